"""What the devices execute and the laws they follow: the programs (a supply list, a shot, a
temperature profile), the sample's thermal model, closed-loop hold control and the learning
from pulse to pulse. Shared by recipes (which build programs) and devices (which run them).

May import: `analysis` and the kernel only.
"""
