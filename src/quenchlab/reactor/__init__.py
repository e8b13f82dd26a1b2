"""A reactor assembled from its config: drivers opened in order and made safe, devices and
flyers, the supply builders, the interlock, and `check` (is every instrument there and set as a
run needs it).

May import: `plans`, `sim` (a config's twins), `recipes`, `config`, `devices`, `control`,
`analysis`, the kernel.
"""
