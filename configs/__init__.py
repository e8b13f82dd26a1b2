"""Example reactor configs and recipes, installed with the package
(`importlib.resources.files("quenchlab.configs")`)."""
