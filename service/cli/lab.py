"""The lab, for the commands that run it (`evaluate`, `study`, training a research form).

The lab (evaluation, scoring, the research activation forms, the activation study) is the
top-level folder `lab/` of a checkout of the repository, beside `benchmarks/`; it is not
installed with the package, so a server can never import it. These commands load it from the
checkout this package runs from (an editable install, `pip install -e .`), by path, without
putting the checkout's other folders on the import path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from topicproj.models.errors import TopicprojError

# service/cli/lab.py -> the repository's root, in a checkout (site-packages/topicproj otherwise)
CHECKOUT = Path(__file__).resolve().parents[2]


def lab_module(name: str = "lab") -> ModuleType:
    """`lab` or one of its modules (`lab.evaluation`), loaded from the checkout once."""
    if "lab" not in sys.modules:
        init = CHECKOUT / "lab" / "__init__.py"
        if not init.is_file():
            raise TopicprojError(
                "this command runs the lab (evaluation and the activation study), which is "
                "not installed with the package: run it from a checkout of the repository "
                "(pip install -e '.[server,dev]')"
            )
        spec = importlib.util.spec_from_file_location(
            "lab", init, submodule_search_locations=[str(init.parent)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["lab"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules["lab"]
            raise
    return importlib.import_module(name)
