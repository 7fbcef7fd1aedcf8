r"""Learning-rate schedulers with PyTorch's names, arguments and exact sequences.

A scheduler changes ``optimizer.lr`` (and, for :class:`OneCycleLR`, ``optimizer.momentum`` or
``optimizer.betas[0]``) once per call of :meth:`LRScheduler.step`, made *after*
``optimizer.step``::

    opt = SGD(params, lr=0.1, momentum=0.9)
    sched = CosineAnnealingLR(opt, T_max=100)
    for epoch in range(100):
        train_one_epoch(opt)       # uses opt.lr
        sched.step()               # opt.lr <- next value;  sched.get_last_lr() == [opt.lr]

The interface is PyTorch's: ``last_epoch`` counts the calls of ``step`` (``0`` right after
construction), ``base_lrs`` are the learning rates at the start, ``get_last_lr()`` returns a
list (one entry: our optimizers have a single parameter group), ``state_dict()`` /
``load_state_dict()`` save and restore a scheduler.  Constructing a scheduler records
``optimizer.initial_lr`` (if not already set) exactly as PyTorch records
``param_group["initial_lr"]``, and already applies the value for epoch 0.

Like PyTorch, most schedulers are *chainable*: each step multiplies the **current**
``optimizer.lr`` by a factor, so two schedulers (or your own changes) compose.  That is why
:class:`CosineAnnealingLR` uses PyTorch's recursive form
:math:`\eta_{t} = \eta_{\min} + (\eta_{t-1}-\eta_{\min})\frac{1+\cos(\pi t/T)}{1+\cos(\pi(t-1)/T)}`
rather than the closed form: the numbers agree only to round-off, and we reproduce
PyTorch's, not the closed form's.

==================================  ========================================================
ours                                PyTorch (``torch.optim.lr_scheduler``)
==================================  ========================================================
``StepLR(opt, step_size, gamma)``   ``StepLR``
``MultiStepLR``                     ``MultiStepLR``
``ConstantLR``                      ``ConstantLR``
``LinearLR``                        ``LinearLR``
``ExponentialLR``                   ``ExponentialLR``
``CosineAnnealingLR``               ``CosineAnnealingLR``
``LambdaLR``                        ``LambdaLR``
``SequentialLR``                    ``SequentialLR`` (e.g. linear warm-up, then cosine)
``OneCycleLR``                      ``OneCycleLR``
``ReduceLROnPlateau``               ``ReduceLROnPlateau`` (``step(metric)``)
==================================  ========================================================

Deliberate differences: arguments are validated (``ValueError``/``TypeError`` naming the
argument), the deprecated ``step(epoch)`` form is not offered, and
:class:`ReduceLROnPlateau` refuses a NaN metric (training has diverged) instead of counting
it as a bad epoch.
"""

from __future__ import annotations

import copy
import math
import numbers
from bisect import bisect_right
from collections import Counter

from ..validation import check_in_range, check_positive
from .optimizers import Optimizer


def _check_optimizer(optimizer) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a course_lib.optim Optimizer, got {type(optimizer).__name__}")
    for k, group in enumerate(getattr(optimizer, "param_groups", [])):
        scheduled = sorted({"lr", "momentum", "betas"} & set(group))
        if scheduled:
            raise ValueError(
                f"optimizer.param_groups[{k}] overrides {scheduled}: our schedulers set one "
                "optimizer.lr (and momentum) for all groups; use one optimizer per group instead")
    return optimizer


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _single(name: str, value):
    """A per-group argument (float or list of one float, as PyTorch allows) -> the float."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(
                f"{name} must be a number or a list with one entry (one parameter group), "
                f"got {value!r}")
        value = value[0]
    return value


class LRScheduler:
    """Base class: PyTorch's ``LRScheduler`` for an optimizer with one parameter group.

    Subclasses implement :meth:`get_lr` (the next learning rate, as a one-element list,
    computed from ``self.last_epoch`` and usually the current ``optimizer.lr``) and, where a
    closed form exists, ``_get_closed_form_lr`` (used by :class:`SequentialLR`).

    optimizer:  one of our optimizers.
    last_epoch: ``-1`` to start fresh (default).  To resume, pass the last epoch done; the
                optimizer must then already have ``initial_lr`` (from its state_dict).
    """

    def __init__(self, optimizer, last_epoch: int = -1):
        self.optimizer = _check_optimizer(optimizer)
        _check_int("last_epoch", last_epoch, -1)
        if last_epoch == -1:
            if optimizer.initial_lr is None:      # PyTorch: group.setdefault("initial_lr", lr)
                optimizer.initial_lr = optimizer.lr
        elif optimizer.initial_lr is None:
            raise ValueError(
                f"last_epoch={last_epoch} resumes a schedule, but optimizer.initial_lr is not "
                "set: load the optimizer's state_dict first")
        self.base_lrs = [optimizer.initial_lr]
        self.last_epoch = last_epoch
        self._is_initial = False
        self._initial_step()

    def _initial_step(self) -> None:
        """The step the constructor makes: sets the learning rate for epoch 0."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        """The learning rate for epoch ``self.last_epoch`` (already incremented)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch (or batch) and set ``optimizer.lr`` to the new value."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:  # jump to an epoch: the closed form (used by SequentialLR at its milestones)
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        self.optimizer.lr = values[0]
        self._last_lr = [self.optimizer.lr]

    def get_last_lr(self) -> list[float]:
        """The learning rate set by the last step, as a list (one entry per group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer, deep-copied."""
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "optimizer"})

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(copy.deepcopy(state_dict))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr[0]!r})"


class LambdaLR(LRScheduler):
    r""":math:`\eta_t = \eta_0 \cdot \text{lr\_lambda}(t)`.  PyTorch: ``LambdaLR``.

    lr_lambda: a function of the epoch (int) returning a factor.  Note: ``state_dict``
    leaves the function out (as PyTorch does for plain functions).
    """

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda must be a function of the epoch, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * self.lr_lambda(self.last_epoch) for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        return copy.deepcopy({k: v for k, v in self.__dict__.items()
                              if k not in ("optimizer", "lr_lambda")})


class StepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every ``step_size`` epochs:
    :math:`\eta_t = \eta_0\,\gamma^{\lfloor t / \text{step\_size}\rfloor}`.

    step_size: int >= 1; gamma > 0 (default 0.1).  PyTorch: ``StepLR``.
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _check_int("step_size", step_size, 1)
        self.gamma = check_positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [self.optimizer.lr]
        return [self.optimizer.lr * self.gamma]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` at each epoch listed in ``milestones``.

    milestones: increasing epochs (ints >= 0; a repeated one multiplies by gamma**count).
    PyTorch: ``MultiStepLR``.
    """

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for i, m in enumerate(milestones):
            _check_int(f"milestones[{i}]", m, 0)
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        self.milestones = Counter(milestones)
        self.gamma = check_positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return [self.optimizer.lr]
        return [self.optimizer.lr * self.gamma ** self.milestones[self.last_epoch]]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    r"""Multiply the lr by ``factor`` for the first ``total_iters`` epochs, then restore it.

    factor in (0, 1] (default 1/3); total_iters: int >= 0.  PyTorch: ``ConstantLR``.
    """

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):
        self.factor = check_in_range("factor", factor, 0.0, 1.0, low_inclusive=False,
                                     high_inclusive=True)
        self.total_iters = _check_int("total_iters", total_iters, 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [self.optimizer.lr * self.factor]
        if self.last_epoch != self.total_iters:
            return [self.optimizer.lr]
        return [self.optimizer.lr * (1.0 / self.factor)]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the lr by a factor going linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs (the usual *linear warm-up* when ``end_factor=1``):
    :math:`\eta_t = \eta_0\,(s + (e - s)\min(t, T)/T)`.

    start_factor in (0, 1] (default 1/3), end_factor in [0, 1] (default 1),
    total_iters: int >= 1 (default 5).  PyTorch: ``LinearLR`` (same recursive update).
    """

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        self.start_factor = check_in_range("start_factor", start_factor, 0.0, 1.0,
                                           low_inclusive=False, high_inclusive=True)
        self.end_factor = check_in_range("end_factor", end_factor, 0.0, 1.0,
                                         high_inclusive=True)
        self.total_iters = _check_int("total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [self.optimizer.lr * self.start_factor]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [self.optimizer.lr]
        # ratio of consecutive factors, so the update composes with other schedulers
        return [self.optimizer.lr * (1.0 + (self.end_factor - self.start_factor) / (
            self.total_iters * self.start_factor
            + (self.last_epoch - 1) * (self.end_factor - self.start_factor)))]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every epoch: :math:`\eta_t = \eta_0\gamma^t`.

    gamma > 0.  PyTorch: ``ExponentialLR``.
    """

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = check_positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:  # resuming from a checkpoint must not decay one extra time
            return [self.optimizer.lr]
        return [self.optimizer.lr * self.gamma]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial lr down to ``eta_min`` over ``T_max`` epochs.

    Closed form (SGDR without restarts):
    :math:`\eta_t = \eta_{\min} + \tfrac12(\eta_0-\eta_{\min})(1+\cos(\pi t/T_{\max}))`.
    Like PyTorch we step it *recursively*,
    :math:`\eta_t = \eta_{\min} + (\eta_{t-1}-\eta_{\min})
    \frac{1+\cos(\pi t/T_{\max})}{1+\cos(\pi (t-1)/T_{\max})}`,
    which follows the closed form to round-off and composes with other changes to the lr.
    After ``T_max`` the lr rises again (a cosine of period ``2 T_max``), as in PyTorch.

    T_max: int >= 1; eta_min >= 0.  PyTorch: ``CosineAnnealingLR``.
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _check_int("T_max", T_max, 1)
        self.eta_min = check_positive("eta_min", eta_min, allow_zero=True)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lr, t, T, eta_min = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [lr]
        if self._step_count == 1 and t > 0:  # resumed: restart the recursion from the closed form
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            # at the bottom of the cosine the ratio below would be 0/0: step up directly
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]``, and so on.

    The usual use is a warm-up followed by the main schedule::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])

    At a milestone the next scheduler starts from its own epoch 0 (its closed form), so
    the cosine starts from ``initial_lr``, not from wherever the warm-up left the lr.
    schedulers: built on the same optimizer; milestones: ``len(schedulers) - 1`` increasing
    ints.  PyTorch: ``SequentialLR``.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        _check_optimizer(optimizer)
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("schedulers must hold at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"schedulers[{i}] is a ReduceLROnPlateau, which needs a "
                                 "metric in step() and cannot be sequenced")
            if not isinstance(s, LRScheduler):
                raise TypeError(f"schedulers[{i}] must be a scheduler, got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] belongs to a different optimizer")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"milestones must have len(schedulers) - 1 = {len(schedulers) - 1} entries, "
                f"got {len(milestones)}")
        for i, m in enumerate(milestones):
            _check_int(f"milestones[{i}]", m, 1)
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        _check_int("last_epoch", last_epoch, -1)
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        self.base_lrs = [optimizer.initial_lr]
        # Constructing each scheduler already made its initial step: undo them all, then
        # make the initial step of the scheduler that runs at epoch 0 only.
        optimizer.lr = optimizer.initial_lr
        self._recursive_undo()
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def _recursive_undo(self, sched=None) -> None:
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self._recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)       # start the next schedule from its epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict:
        sd = copy.deepcopy({k: v for k, v in self.__dict__.items()
                            if k not in ("optimizer", "_schedulers")})
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        inner = state_dict.pop("_schedulers")
        self.__dict__.update(copy.deepcopy(state_dict))
        for s, sd in zip(self._schedulers, inner):
            s.load_state_dict(sd)


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin): warm the lr up from ``max_lr / div_factor`` to
    ``max_lr`` during the first ``pct_start`` of the steps, then anneal it down to
    ``initial_lr / final_div_factor``; momentum (or Adam's ``beta1``) moves the opposite way
    between ``max_momentum`` and ``base_momentum``.  Step it once per **batch**.

    With ``three_phase=True`` the second phase returns symmetrically to ``initial_lr`` and a
    third one anneals to the minimum (the paper's version; the default is fastai's).
    ``anneal_strategy``: ``"cos"`` (:math:`e + \frac{s-e}{2}(1+\cos\pi p)`) or ``"linear"``.

    max_lr > 0; total_steps (or epochs * steps_per_epoch) >= 1; pct_start: float in [0, 1];
    div_factor, final_div_factor > 0; ``cycle_momentum`` needs an optimizer with
    ``momentum`` or ``betas`` (not Adagrad).  Calling :meth:`step` more than
    ``total_steps`` times raises ``ValueError``, and so does a ``pct_start`` that leaves a
    phase with zero steps (``pct_start * total_steps == 1``), where torch divides by zero.
    PyTorch: ``OneCycleLR`` (which keeps max_lr/min_lr/max_momentum/base_momentum in the
    param group; we keep them on the scheduler and set ``optimizer.initial_lr``).
    """

    def __init__(self, optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            self.total_steps = _check_int("total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_check_int("epochs", epochs, 1)
                                * _check_int("steps_per_epoch", steps_per_epoch, 1))
        else:
            raise ValueError("give either total_steps or both epochs and steps_per_epoch")
        if isinstance(pct_start, bool) or not isinstance(pct_start, float):
            raise TypeError(f"pct_start must be a float in [0, 1], got {pct_start!r}")
        check_in_range("pct_start", pct_start, 0.0, 1.0, high_inclusive=True)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.max_lr = check_positive("max_lr", _single("max_lr", max_lr))
        check_positive("div_factor", div_factor)
        check_positive("final_div_factor", final_div_factor)
        self.three_phase = bool(three_phase)
        n = self.total_steps
        if three_phase:
            self._schedule_phases = [
                dict(end_step=float(pct_start * n) - 1, start_lr="initial_lr",
                     end_lr="max_lr", start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=float(2 * pct_start * n) - 2, start_lr="max_lr",
                     end_lr="initial_lr", start_momentum="base_momentum",
                     end_momentum="max_momentum"),
                dict(end_step=n - 1, start_lr="initial_lr", end_lr="min_lr",
                     start_momentum="max_momentum", end_momentum="max_momentum"),
            ]
        else:
            self._schedule_phases = [
                dict(end_step=float(pct_start * n) - 1, start_lr="initial_lr",
                     end_lr="max_lr", start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=n - 1, start_lr="max_lr", end_lr="min_lr",
                     start_momentum="base_momentum", end_momentum="max_momentum"),
            ]
        start = 0.0
        for phase in self._schedule_phases:
            # torch's OneCycleLR accepts a phase of zero steps, then divides by zero when it reaches it
            if phase["end_step"] == start:
                raise ValueError(f"pct_start={pct_start} with total_steps={n} gives a phase of zero "
                                 f"steps (pct_start * total_steps = {pct_start * n:g}); torch's "
                                 "OneCycleLR divides by zero there. Use a pct_start that gives each "
                                 "phase at least 2 steps")
            start = phase["end_step"]
        if last_epoch == -1:
            optimizer.initial_lr = self.max_lr / div_factor
        elif optimizer.initial_lr is None:
            raise ValueError(f"last_epoch={last_epoch} resumes a schedule, but "
                             "optimizer.initial_lr is not set")
        self.initial_lr = optimizer.initial_lr
        self.min_lr = self.initial_lr / final_div_factor

        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            self.use_beta1 = hasattr(optimizer, "betas")
            if not self.use_beta1 and not hasattr(optimizer, "momentum"):
                raise ValueError(
                    f"cycle_momentum=True needs an optimizer with momentum or betas, "
                    f"{type(optimizer).__name__} has neither; pass cycle_momentum=False")
            self.max_momentum = check_positive(
                "max_momentum", _single("max_momentum", max_momentum), allow_zero=True)
            self.base_momentum = check_positive(
                "base_momentum", _single("base_momentum", base_momentum), allow_zero=True)
            if last_epoch == -1:
                self._set_momentum(optimizer, self.max_momentum)
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, optimizer, value: float) -> None:
        if self.use_beta1:
            optimizer.betas = (value, *optimizer.betas[1:])
        else:
            optimizer.momentum = value

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        """Cosine anneal from ``start`` to ``end`` as ``pct`` goes from 0 to 1."""
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        """Linear anneal from ``start`` to ``end`` as ``pct`` goes from 0 to 1."""
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {step_num} times, but total_steps is "
                             f"{self.total_steps}")
        anneal = self._annealing_cos if self.anneal_strategy == "cos" else self._annealing_linear
        start_step = 0.0
        for i, phase in enumerate(self._schedule_phases):
            end_step = phase["end_step"]
            if step_num <= end_step or i == len(self._schedule_phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                lr = anneal(getattr(self, phase["start_lr"]), getattr(self, phase["end_lr"]), pct)
                if self.cycle_momentum:
                    momentum = anneal(getattr(self, phase["start_momentum"]),
                                      getattr(self, phase["end_momentum"]), pct)
                    self._set_momentum(self.optimizer, momentum)
                return [lr]
            start_step = phase["end_step"]
        raise AssertionError("unreachable")  # pragma: no cover


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for ``patience``
    epochs; call ``step(metric)`` once per epoch (e.g. with the validation loss).

    mode: ``"min"`` (lower is better) or ``"max"``.  A value counts as an improvement if it
    beats the best so far by more than ``threshold``: relatively (``threshold_mode="rel"``:
    ``best * (1 - threshold)`` in min mode) or absolutely (``"abs"``: ``best - threshold``).
    After more than ``patience`` bad epochs in a row the lr becomes
    ``max(lr * factor, min_lr)`` (skipped if that changes it by less than ``eps``), and
    the next ``cooldown`` epochs are not counted.

    factor in [0, 1); patience, cooldown: ints >= 0; threshold, min_lr, eps >= 0.
    PyTorch: ``ReduceLROnPlateau`` (same arguments and defaults).  Like PyTorch's, it is an
    :class:`LRScheduler` that does not use the base constructor: it sets no ``initial_lr``
    and makes no initial step.
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0, eps: float = 1e-8):
        # no super().__init__(): nothing to record or apply before the first metric
        self.optimizer = _check_optimizer(optimizer)
        self.factor = check_in_range("factor", factor, 0.0, 1.0)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.threshold = check_positive("threshold", threshold, allow_zero=True)
        self.patience = _check_int("patience", patience, 0)
        self.cooldown = _check_int("cooldown", cooldown, 0)
        self.min_lr = check_positive("min_lr", _single("min_lr", min_lr), allow_zero=True)
        self.eps = check_positive("eps", eps, allow_zero=True)
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [optimizer.lr]
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric value ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics) -> None:  # the base class step() takes no metric
        """Record this epoch's metric (a number) and reduce the lr if it has plateaued."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"metrics must be a number, got {metrics!r}") from None
        if math.isnan(current):
            raise ValueError("metrics is NaN: training has diverged; stop instead of "
                             "reducing the learning rate")
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0          # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [self.optimizer.lr]

    def _reduce_lr(self) -> None:
        old_lr = float(self.optimizer.lr)
        new_lr = max(old_lr * self.factor, self.min_lr)
        if old_lr - new_lr > self.eps:
            self.optimizer.lr = new_lr

    def get_lr(self) -> list[float]:  # pragma: no cover - the lr changes only in step()
        return [self.optimizer.lr]

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(mode={self.mode!r}, best={self.best!r}, "
                f"num_bad_epochs={self.num_bad_epochs}, lr={self._last_lr[0]!r})")


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to 0 over ``total_iters`` epochs, then constant:
    :math:`\eta_t = \eta_0\,(1 - \min(t, T)/T)^{p}`.

    Stepped recursively like PyTorch's (multiply by
    :math:`((1 - t/T)/(1 - (t-1)/T))^p`), so it composes with other changes to the lr.
    total_iters: int >= 1 (default 5); power > 0 (default 1: linear decay).
    PyTorch: ``PolynomialLR(optimizer, total_iters=5, power=1.0)``.
    """

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        self.total_iters = _check_int("total_iters", total_iters, 1)
        self.power = check_positive("power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return [self.optimizer.lr]
        T, t = self.total_iters, self.last_epoch
        return [self.optimizer.lr * ((1.0 - t / T) / (1.0 - (t - 1) / T)) ** self.power]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR (Loshchilov & Hutter, 2017): cosine annealing that restarts from the initial lr.

    :math:`\eta = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})(1 + \cos(\pi\,T_{cur}/T_i))`, where
    :math:`T_{cur}` counts the epochs since the last restart and the cycle length starts at
    ``T_0`` and is multiplied by ``T_mult`` after every restart.
    T_0: int >= 1; T_mult: int >= 1; eta_min >= 0.
    PyTorch: ``CosineAnnealingWarmRestarts(optimizer, T_0, T_mult=1, eta_min=0.0)``.
    """

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1):
        self.T_0 = _check_int("T_0", T_0, 1)
        self.T_i = self.T_0
        self.T_mult = _check_int("T_mult", T_mult, 1)
        self.eta_min = check_positive("eta_min", eta_min, allow_zero=True)
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self) -> None:
        self._step_count += 1
        if self.last_epoch < 0:
            self._update_lr(0)
            return
        self.T_cur += 1
        if self.T_cur >= self.T_i:
            self.T_cur %= self.T_i
            self.T_i *= self.T_mult
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()[0]
        self._last_lr = [self.optimizer.lr]

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.step()
            return
        # jump to an epoch (SequentialLR at a milestone, or the first step): PyTorch's step(epoch)
        if epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self.optimizer.lr = self.get_lr()[0]
        self._last_lr = [self.optimizer.lr]
