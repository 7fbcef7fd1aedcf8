r"""Optimizer classes: they hold hyperparameters and state, the math is in ``functional``.

The interface every optimizer follows::

    opt = Adam([W, b], lr=1e-3)          # params: a list of float arrays, any shapes
    for X, y in batches:
        loss, (dW, db) = loss_and_grads(W, b, X, y)
        opt.step([dW, db])               # updates W and b IN PLACE (the same array objects)
    opt.lr = 1e-4                        # hyperparameters are plain attributes
    sd = opt.state_dict()                # deep copy of hyperparameters and state

Differences from ``torch.optim``, all deliberate:

* gradients are passed to :meth:`Optimizer.step` (NumPy arrays have no ``.grad``), so there
  is no ``zero_grad``; they must match the parameters in number, shape and dtype exactly;
* the optimizer's hyperparameters are attributes (``opt.lr``, ``opt.momentum``, ``opt.betas``,
  ...; schedulers read and write them).  ``params`` may also be a list of **parameter groups**,
  dicts ``{"params": [...], "weight_decay": 0.0, ...}`` as in PyTorch: a group's entries override
  the optimizer's attributes for its parameters (e.g. no weight decay on biases, a smaller lr
  for one layer).  Groups that override ``lr`` (or ``momentum``/``betas``) cannot be driven by
  our schedulers, which set one ``opt.lr`` (PyTorch schedules each group's lr separately);
* ``backend="numpy"`` runs the readable reference in :mod:`course_lib.optim.functional`,
  ``backend="numba"`` its fused, parallel twin in :mod:`course_lib.kernels.optim`
  (instead of PyTorch's ``foreach=`` / ``fused=``);
* hyperparameters are checked at construction (and on :meth:`Optimizer.load_state_dict`),
  like PyTorch; values assigned later (by you or a scheduler) are trusted.

=============================  ==========================================
ours                           PyTorch
=============================  ==========================================
``SGD(params, lr=1e-3, ...)``  ``torch.optim.SGD(params, lr=1e-3, ...)``
``Adagrad``                    ``torch.optim.Adagrad``
``RMSprop``                    ``torch.optim.RMSprop``
``Adam``                       ``torch.optim.Adam``
``AdamW``                      ``torch.optim.AdamW``
=============================  ==========================================
"""

from __future__ import annotations

import copy

import numpy as np

from ..validation import check_in_range, check_positive
from . import functional

BACKENDS = ("numpy", "numba")
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _kernels():
    # imported on first use so that ``import course_lib.optim`` never pays for numba
    from ..kernels import optim as kernels
    return kernels


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _split_groups(params):
    """``params`` as a flat list of arrays plus a list of group dicts (``None`` if no groups)."""
    if isinstance(params, (list, tuple)) and params and all(isinstance(g, dict) for g in params):
        flat, groups = [], []
        for k, group in enumerate(params):
            if "params" not in group:
                raise ValueError(f"params[{k}] is a parameter group without a 'params' key: {group!r}")
            members = group["params"]
            if isinstance(members, np.ndarray):
                members = [members]
            members = list(members)
            groups.append({**group, "params": members})
            flat.extend(members)
        return flat, groups
    if isinstance(params, (list, tuple)) and any(isinstance(g, dict) for g in params):
        raise TypeError("params must be a list of arrays or a list of parameter-group dicts, not a mix")
    return params, None


def _check_params(params) -> list[np.ndarray]:
    if isinstance(params, np.ndarray):
        raise TypeError(
            "params must be a list of arrays, got a single array of shape "
            f"{params.shape}; wrap it in a list: [param]")
    if isinstance(params, (str, bytes, dict)) or not hasattr(params, "__iter__"):
        raise TypeError(f"params must be a list of arrays, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError("params is an empty list: the optimizer has nothing to update")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(
                f"params[{i}] must be a NumPy array (updated in place), got {type(p).__name__}")
        if p.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"params[{i}] must have dtype float32 or float64, got {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] is read-only; the optimizer updates it in place")
        for j, q in enumerate(params[:i]):  # the same array, or views that overlap in memory
            if p is q or np.shares_memory(p, q):
                raise ValueError(
                    f"params[{i}] shares memory with params[{j}]; "
                    "the shared entries would be updated twice per step")
    return params


class Optimizer:
    """Base class: holds ``params``, per-parameter ``state`` and the hyperparameters.

    params:  list of float32/float64 arrays of any shapes, updated in place by :meth:`step`.
    state:   list (one dict per parameter) of step counters and buffers, e.g.
             ``opt.state[0]["exp_avg"]`` (the same keys as PyTorch's ``opt.state[p]``).
    backend: ``"numpy"`` (readable reference, the default) or ``"numba"`` (fused kernels).

    Subclasses list their hyperparameter names in ``hyperparam_names``, check them in
    :meth:`_check_hyperparams` and update one parameter in :meth:`_update`.
    """

    hyperparam_names: tuple[str, ...] = ()

    def __init__(self, params, *, backend: str = "numpy"):
        params, groups = _split_groups(params)
        self.params = _check_params(params)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.state: list[dict] = [{} for _ in self.params]
        # Set by the first learning-rate scheduler attached (PyTorch: param_group["initial_lr"]).
        self.initial_lr: float | None = None
        self._check_hyperparams()
        self._set_param_groups(groups)

    # -- parameter groups ------------------------------------------------------------
    def _set_param_groups(self, groups) -> None:
        """``self.param_groups``: ``[{"params": [...], **overrides}]`` (one group, no overrides,
        when ``params`` was a plain list); ``self._group_index[i]``: the group of ``params[i]``."""
        if groups is None:
            groups = [{"params": list(self.params)}]
        index = []
        for k, group in enumerate(groups):
            unknown = set(group) - {"params"} - set(self.hyperparam_names)
            if unknown:
                raise ValueError(
                    f"param_groups[{k}] has unknown key(s) {sorted(unknown)}; {type(self).__name__} "
                    f"accepts {list(self.hyperparam_names)}")
            with self._group_hyperparams(group):
                try:
                    self._check_hyperparams()
                except (TypeError, ValueError) as err:
                    raise type(err)(f"param_groups[{k}]: {err}") from None
            index.extend([k] * len(group["params"]))
        self.param_groups = groups
        self._group_index = index

    def _group_hyperparams(self, group):
        """Context manager: the optimizer's attributes temporarily replaced by ``group``'s overrides."""
        import contextlib

        @contextlib.contextmanager
        def swap():
            overrides = {k: v for k, v in group.items() if k != "params"}
            saved = {k: getattr(self, k) for k in overrides}
            try:
                for k, v in overrides.items():
                    setattr(self, k, v)
                yield
            finally:
                for k, v in saved.items():
                    setattr(self, k, v)
        return swap()

    def group_overrides(self) -> list[dict]:
        """Each group's overriding hyperparameters (without its params)."""
        return [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]

    # -- hyperparameters -------------------------------------------------------------
    @property
    def hyperparams(self) -> dict:
        """The current hyperparameters as a dict (PyTorch: ``param_groups[0]`` minus params)."""
        return {name: getattr(self, name) for name in self.hyperparam_names}

    def _check_hyperparams(self) -> None:
        check_positive("lr", self.lr, allow_zero=True)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({args}, backend={self.backend!r})"

    # -- the step ----------------------------------------------------------------------
    def step(self, grads, *, check_finite: bool = False) -> None:
        """Update every parameter in place from its gradient.

        grads: a list with one array per parameter, same order, shape and dtype.
        check_finite: raise ``ValueError`` if a gradient holds NaN or inf (costs one extra
            pass over memory; off by default, as in PyTorch, because the training loops
            already stop on a non-finite loss).
        """
        grads = self._check_grads(grads, check_finite)
        step_fn = getattr(_kernels() if self.backend == "numba" else functional,
                          self.step_function)
        if len(self.param_groups) == 1 and len(self.param_groups[0]) == 1:
            for param, grad, state in zip(self.params, grads, self.state):
                self._update(step_fn, param, grad, state)
            return
        for k, group in enumerate(self.param_groups):     # PyTorch: for group in param_groups
            with self._group_hyperparams(group):
                for i, gk in enumerate(self._group_index):
                    if gk == k:
                        self._update(step_fn, self.params[i], grads[i], self.state[i])

    step_function = ""  # name of the function in functional / kernels.optim

    def _update(self, step_fn, param, grad, state) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_grads(self, grads, check_finite: bool) -> list[np.ndarray]:
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(
                f"grads must be a list with one array per param, got {type(grads).__name__}")
        if len(grads) != len(self.params):
            raise ValueError(
                f"grads must have one array per param: got {len(grads)} grads for "
                f"{len(self.params)} params")
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if not isinstance(g, np.ndarray):
                raise TypeError(f"grads[{i}] must be a NumPy array, got {type(g).__name__}")
            if g.shape != p.shape:
                raise ValueError(
                    f"grads[{i}] must have shape {p.shape} like params[{i}], got {g.shape} "
                    "(no broadcasting)")
            if g.dtype != p.dtype:
                raise ValueError(
                    f"grads[{i}] must have dtype {p.dtype} like params[{i}], got {g.dtype}")
            if check_finite and not np.all(np.isfinite(g)):
                bad = int(g.size - np.count_nonzero(np.isfinite(g)))
                raise ValueError(f"grads[{i}] contains {bad} non-finite value(s) (NaN or inf)")
        return list(grads)

    def _zeros(self, param, fill: float = 0.0) -> np.ndarray:
        # state buffers are always C-contiguous, so the numba kernels read them as flat views
        return np.full(param.shape, fill, dtype=param.dtype)

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A deep copy of the hyperparameters and the per-parameter state.

        ``{"hyperparams": {...}, "initial_lr": float | None, "state": [dict per param]}``
        (PyTorch: ``{"param_groups": [...], "state": {...}}``).
        """
        return {"hyperparams": copy.deepcopy(self.hyperparams),
                "initial_lr": self.initial_lr,
                "state": copy.deepcopy(self.state),
                "group_overrides": copy.deepcopy(self.group_overrides())}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict` (deep-copied)."""
        if not isinstance(state_dict, dict) or not {"hyperparams", "state"} <= set(state_dict):
            raise ValueError("state_dict must be a dict from Optimizer.state_dict() with keys "
                             "'hyperparams' and 'state'")
        hyper, states = state_dict["hyperparams"], state_dict["state"]
        if set(hyper) != set(self.hyperparam_names):
            raise ValueError(
                f"state_dict['hyperparams'] has keys {sorted(hyper)}, expected "
                f"{sorted(self.hyperparam_names)} for {type(self).__name__}")
        if len(states) != len(self.params):
            raise ValueError(
                f"state_dict['state'] has {len(states)} entries for {len(self.params)} params")
        new_states = []
        for i, (p, st) in enumerate(zip(self.params, states)):
            new = {}
            for key, value in st.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.shape or value.dtype != p.dtype:
                        raise ValueError(
                            f"state_dict['state'][{i}][{key!r}] has shape {value.shape} and "
                            f"dtype {value.dtype}, params[{i}] has {p.shape} and {p.dtype}")
                    value = np.array(value, order="C", copy=True)
                else:
                    value = copy.deepcopy(value)
                new[key] = value
            new_states.append(new)
        old = self.hyperparams
        for name, value in hyper.items():
            setattr(self, name, copy.deepcopy(value))
        try:
            self._check_hyperparams()
        except (TypeError, ValueError):
            for name, value in old.items():
                setattr(self, name, value)
            raise
        self.initial_lr = state_dict.get("initial_lr")
        self.state = new_states
        overrides = state_dict.get("group_overrides")
        if overrides is not None:
            if len(overrides) != len(self.param_groups):
                raise ValueError(
                    f"state_dict['group_overrides'] has {len(overrides)} groups, the optimizer has "
                    f"{len(self.param_groups)}")
            for group, over in zip(self.param_groups, overrides):
                for key in [k for k in group if k != "params"]:
                    del group[key]
                group.update(copy.deepcopy(over))


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    .. math:: \theta \leftarrow \theta - \eta\,d, \qquad
              b \leftarrow \mu b + (1-\tau) g, \qquad
              d = b \ \text{or}\ g + \mu b \ \text{(Nesterov)}

    See :func:`course_lib.optim.functional.sgd_step` for the full update.

    params: list of float arrays.  lr >= 0, momentum >= 0, dampening in [0, 1],
    weight_decay >= 0; ``nesterov`` needs ``momentum > 0`` and ``dampening == 0``.
    State: ``momentum_buffer`` (``None`` until the first step with momentum).
    PyTorch: ``torch.optim.SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
    nesterov=False, *, maximize=False)``.
    """

    hyperparam_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    step_function = "sgd_step"

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 backend: str = "numpy"):
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        super().__init__(params, backend=backend)

    def _check_hyperparams(self) -> None:
        super()._check_hyperparams()
        check_positive("momentum", self.momentum, allow_zero=True)
        check_in_range("dampening", self.dampening, 0.0, 1.0, high_inclusive=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_bool("nesterov", self.nesterov)
        _check_bool("maximize", self.maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening == 0, got "
                f"momentum={self.momentum!r}, dampening={self.dampening!r}")

    def _update(self, step_fn, param, grad, state) -> None:
        state["momentum_buffer"] = step_fn(
            param, grad, state.get("momentum_buffer"), lr=float(self.lr),
            momentum=float(self.momentum), dampening=float(self.dampening),
            weight_decay=float(self.weight_decay), nesterov=bool(self.nesterov),
            maximize=bool(self.maximize))


class Adagrad(Optimizer):
    r"""Adagrad: per-coordinate step sizes shrinking with the accumulated squared gradients.

    .. math:: G \leftarrow G + g^2, \qquad
              \theta \leftarrow \theta - \frac{\eta}{1+(t-1)\,\text{lr\_decay}}
              \frac{g}{\sqrt{G}+\epsilon}

    See :func:`course_lib.optim.functional.adagrad_step`.
    lr, lr_decay, weight_decay, initial_accumulator_value, eps: all >= 0.
    State: ``step`` (int), ``sum`` (like the param, starts at initial_accumulator_value).
    PyTorch: ``torch.optim.Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0,
    initial_accumulator_value=0, eps=1e-10, *, maximize=False)``.
    """

    hyperparam_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps",
                        "maximize")
    step_function = "adagrad_step"

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *,
                 maximize: bool = False, backend: str = "numpy"):
        self.lr, self.lr_decay, self.weight_decay = lr, lr_decay, weight_decay
        self.initial_accumulator_value, self.eps, self.maximize = (
            initial_accumulator_value, eps, maximize)
        super().__init__(params, backend=backend)
        # PyTorch creates Adagrad's state eagerly, in the constructor
        # (from the constructor's initial_accumulator_value even where a parameter group
        # overrides it: PyTorch does the same)
        for p, st in zip(self.params, self.state):
            st["step"] = 0
            st["sum"] = self._zeros(p, initial_accumulator_value)

    def _check_hyperparams(self) -> None:
        super()._check_hyperparams()
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_positive(name, getattr(self, name), allow_zero=True)
        _check_bool("maximize", self.maximize)

    def _update(self, step_fn, param, grad, state) -> None:
        state["step"] += 1
        step_fn(param, grad, state["sum"], state["step"], lr=float(self.lr),
                lr_decay=float(self.lr_decay), weight_decay=float(self.weight_decay),
                eps=float(self.eps), maximize=bool(self.maximize))


class RMSprop(Optimizer):
    r"""RMSprop: divide by a running root-mean-square of the gradients.

    .. math:: v \leftarrow \alpha v + (1-\alpha) g^2, \qquad
              \theta \leftarrow \theta - \eta \frac{g}{\sqrt{v}+\epsilon}

    optionally ``centered`` (subtract the squared running mean of g) and with ``momentum``.
    See :func:`course_lib.optim.functional.rmsprop_step`.
    lr, eps, weight_decay, momentum >= 0; alpha in [0, 1].
    State: ``step``, ``square_avg``, ``momentum_buffer`` (if momentum > 0), ``grad_avg``
    (if centered), created on the first step.
    PyTorch: ``torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
    momentum=0, centered=False, maximize=False)``.
    """

    hyperparam_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered",
                        "maximize")
    step_function = "rmsprop_step"

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False, backend: str = "numpy"):
        self.lr, self.alpha, self.eps, self.weight_decay = lr, alpha, eps, weight_decay
        self.momentum, self.centered, self.maximize = momentum, centered, maximize
        super().__init__(params, backend=backend)

    def _check_hyperparams(self) -> None:
        super()._check_hyperparams()
        check_in_range("alpha", self.alpha, 0.0, 1.0, high_inclusive=True)
        for name in ("eps", "weight_decay", "momentum"):
            check_positive(name, getattr(self, name), allow_zero=True)
        _check_bool("centered", self.centered)
        _check_bool("maximize", self.maximize)

    def _update(self, step_fn, param, grad, state) -> None:
        if not state:
            state["step"] = 0
            state["square_avg"] = self._zeros(param)
        # buffers created when first needed (a scheduler may switch momentum on later)
        if self.momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._zeros(param)
        if self.centered and "grad_avg" not in state:
            state["grad_avg"] = self._zeros(param)
        state["step"] += 1
        step_fn(param, grad, state["square_avg"], state.get("grad_avg"),
                state.get("momentum_buffer"), lr=float(self.lr), alpha=float(self.alpha),
                eps=float(self.eps), weight_decay=float(self.weight_decay),
                momentum=float(self.momentum), centered=bool(self.centered),
                maximize=bool(self.maximize))


class Adam(Optimizer):
    r"""Adam: momentum on g and on g², bias-corrected; optionally AMSGrad.

    .. math:: m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
              v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
              \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}
              \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}

    ``weight_decay`` adds :math:`\lambda\theta` to the gradient (L2, "coupled"); with
    ``decoupled_weight_decay=True`` it shrinks the weights instead, which is :class:`AdamW`.
    See :func:`course_lib.optim.functional.adam_step`.
    lr, eps, weight_decay >= 0; betas = (beta1, beta2), each in [0, 1).
    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad), created on
    the first step.
    PyTorch: ``torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0, amsgrad=False, *, maximize=False, decoupled_weight_decay=False)``.
    """

    hyperparam_names = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                        "decoupled_weight_decay")
    step_function = "adam_step"

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False,
                 backend: str = "numpy"):
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.amsgrad, self.maximize = amsgrad, maximize
        self.decoupled_weight_decay = decoupled_weight_decay
        super().__init__(params, backend=backend)

    def _check_hyperparams(self) -> None:
        super()._check_hyperparams()
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            check_in_range(f"betas[{i}]", b, 0.0, 1.0)
        self.betas = tuple(betas)
        check_positive("eps", self.eps, allow_zero=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_bool("amsgrad", self.amsgrad)
        _check_bool("maximize", self.maximize)
        _check_bool("decoupled_weight_decay", self.decoupled_weight_decay)

    def _update(self, step_fn, param, grad, state) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = self._zeros(param)
            state["exp_avg_sq"] = self._zeros(param)
        if self.amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = self._zeros(param)
        state["step"] += 1
        beta1, beta2 = self.betas
        step_fn(param, grad, state["exp_avg"], state["exp_avg_sq"],
                state.get("max_exp_avg_sq"), state["step"], lr=float(self.lr),
                beta1=float(beta1), beta2=float(beta2), eps=float(self.eps),
                weight_decay=float(self.weight_decay), amsgrad=bool(self.amsgrad),
                maximize=bool(self.maximize),
                decoupled_weight_decay=bool(self.decoupled_weight_decay))


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay :math:`\theta \leftarrow (1-\eta\lambda)\theta`.

    The decay no longer passes through Adam's :math:`1/\sqrt{v}` rescaling, so every weight
    shrinks at the same rate (Loshchilov & Hutter, 2019).  Note the default
    ``weight_decay=1e-2`` (Adam's is 0).
    PyTorch: ``torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=1e-2, amsgrad=False, *, maximize=False)``.
    """

    hyperparam_names = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, backend: str = "numpy"):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         backend=backend)
