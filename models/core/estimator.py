"""scikit-learn's estimator protocol without importing scikit-learn.

`TopicModel` keeps scikit-learn's conventions (`get_params`/`set_params` read from the
`__init__` signature, so `sklearn.base.clone` and grid searches work), but inheriting them from
`sklearn.base.BaseEstimator` imported scikit-learn, scipy.stats and pandas into every process that
only loads a model and projects: about a second of a `topicproj project` run and of each server
start. Training imports scikit-learn for its NMF initialisation, when it runs.
"""

from __future__ import annotations

import inspect
from typing import Any


class EstimatorProtocol:
    """`get_params`, `set_params`, `fit_transform` and a repr, as scikit-learn defines them."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> EstimatorProtocol:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid parameters are {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X, **fit_params).transform(X)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k, object()) != v
        ]
        return f"{type(self).__name__}({', '.join(changed)})"
