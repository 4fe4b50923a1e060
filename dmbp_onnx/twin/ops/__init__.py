"""Op converters, one module per op family; importing this package registers them all.

Every module of the package is imported here, so adding an op (family) is adding its
file: its ``@converter`` registrations run on import.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
