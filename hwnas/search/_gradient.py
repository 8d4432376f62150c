"""Shared machinery of the gradient strategies (``gumbel``, ``proxyless``).

A mixed-op supernet (``hwnas.nn.mixed_ops``) has one mixed op per layer of the space's layer
view; its expected latency comes from each target's table at the search resolution (the
largest whose lower bound fits every budget by 10%, unless ``resolution`` is given).

* a space whose plugin has a weight-sharing supernet, with a trained checkpoint of it
  (``weights="auto"``/``"supernet"``): the candidates are the (kernel, expand) settings of the
  checkpoint's elastic blocks, sharing
  its trained weights, which stay frozen; only the architecture logits train, on the
  checkpoint's dataset at its largest training resolution.
* otherwise (spaces without a supernet, or ``weights="fresh"``): fresh candidate modules built
  from the operators at the dataset's channels and classes and ``train_resolution`` (32);
  weights (training split) and architecture logits (held-out validation split) train
  alternately after a weights-only warm-up.

The soft latency term alone does not guarantee a budget, so the derived arch (the argmax of
each layer) is then *repaired* under the hard constraints: while it misses one, the single
layer change that removes the most overshoot per unit of lost log-probability is applied
(all single changes are scored in one vectorised call). The result says whether the soft
term alone had met the budget (``soft_feasible``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwnas._log import progress
from hwnas.errors import BudgetError, HwnasError, TableError
from hwnas.profile.table import at_resolution
from hwnas.search._base import SearchResult, Strategy
from hwnas.search.layers import LayerView, layer_view
from hwnas.search.pareto import Archive
from hwnas.spaces import default_checkpoint, space_from_config, space_plugin

if TYPE_CHECKING:
    import torch

    from hwnas.nn.mixed_ops import MixedNet

__all__ = ["GradientStrategy", "build_mixed_net"]

log = logging.getLogger("hwnas.search")


def build_mixed_net(view: LayerView) -> MixedNet:
    """Fresh modules for every candidate of ``view`` (``null_op`` → skip)."""
    from hwnas.nn.mixed_ops import MixedNet, MixedOp

    ops = view.space.op_list
    null = view.space.null_op
    layers = [MixedOp([None if i == null else ops[i].build() for i in cands])
              for cands in view.candidates]
    return MixedNet([ops[i].build() for i in view.prefix], layers,
                    [ops[i].build() for i in view.suffix])


def supernet_mixed_net(loaded, view: LayerView) -> MixedNet:
    """Candidates as settings of the trained supernet's elastic blocks (frozen)."""
    from torch import nn

    from hwnas.nn.mixed_ops import ElasticChoice, MixedNet, MixedOp

    sup, space = loaded.supernet, loaded.space
    pairs = [(k, e) for k in space.kernels for e in space.expands]
    layers = []
    for slot, labels in enumerate(view.labels):
        cands = [ElasticChoice(sup.blocks[slot], k, e) for k, e in pairs]
        layers.append(MixedOp(cands + [None] * (len(labels) - len(pairs))))
    net = MixedNet([sup.stem, sup.first_block], layers,
                   [sup.final_expand, sup.pool, sup.feature_mix, nn.Flatten(1), sup.classifier])
    for w in net.weights():
        w.requires_grad_(False)
    return net


class GradientStrategy(Strategy):
    """Subclasses set ``arch_mode`` and define ``weight_mode``/``arch_loss``."""

    arch_mode = "gumbel"

    @dataclass
    class Options:
        steps: int = 200
        warmup: float = 0.3
        batch_size: int = 64
        arch_batch_size: int = 32
        dataset: str = "fashion-mnist"
        train_resolution: int = 0
        resolution: int = 0
        weights: str = "auto"
        checkpoint: str = ""
        weight_lr: float = 0.05
        arch_lr: float = 0.05
        eval_images: int = 2000
        samples: int = 2000
        threads: int = 1
        progress: bool = True

    # ------------------------------------------------------------------ hooks
    def configure(self, net: MixedNet, step: int, arch_step: bool) -> None:
        raise NotImplementedError

    def arch_loss(self, ce: torch.Tensor, lat: dict[str, torch.Tensor], problem) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ set-up
    def _resolution(self, problem) -> int:
        """The given resolution, else the largest at which the cheapest arch meets every
        constraint with 10% to spare (else merely meets them, else the smallest)."""
        res = problem.space.resolutions
        if self.options.resolution:
            if self.options.resolution not in res:
                raise BudgetError(f"resolution {self.options.resolution} not in {list(res)}")
            return res.index(self.options.resolution)
        slack = {}
        for ri in range(len(res)):
            g = self._cheapest(problem, layer_view(problem.space, ri))
            ev = problem.evaluate(g[None], score=False)
            worst = float(np.max(ev.bound_ms[:, 0] / problem._budget[:, 0])) if problem.targets \
                else 0.0
            slack[ri] = (bool(ev.feasible[0]), worst)
        for need in (0.9, 1.0):
            ok = [ri for ri, (f, w) in slack.items() if f and w <= need]
            if ok:
                return max(ok)
        return 0

    def _cheapest(self, problem, view: LayerView) -> np.ndarray:
        """Per layer, the candidate with the least latency summed over budgets (relative)."""
        total = [np.zeros(len(c)) for c in view.candidates]
        for b in problem.constraints.latency:
            pv = self._pred_view(problem, b.target, view.r_index)
            _, per_layer = pv.latency_matrix(self._bound_vec(problem, b.target, pv.r_index))
            total = [t + v / b.budget_ms for t, v in zip(total, per_layer)]
        return view.genome([int(np.argmin(t)) for t in total])

    def _pred_view(self, problem, t: str, ri: int) -> LayerView:
        g = np.zeros((1, len(problem.space.choice_sizes())), np.int16)
        g[0, -1] = ri
        return layer_view(problem.predictors[t].space, int(problem.remaps[t](g)[0, -1]))

    def _bound_vec(self, problem, t: str, r_index: int) -> np.ndarray:
        """Per-op values of ``t``'s latency bound at resolution index ``r_index`` of its space."""
        vec = problem._bound_vector(t)
        if vec is None:
            table = getattr(problem.predictors[t], "table", None)
            if table is None:
                raise TableError(f"the '{problem.predictors[t].name}' predictor of {t} has no "
                                 "per-operator table for an expected-latency loss")
            vec = table.space_values(problem.predictors[t].space)
        return at_resolution(vec, r_index)

    def _latency_terms(self, problem, view: LayerView) -> dict:
        import torch

        out = {}
        for t in problem.targets:
            pv = self._pred_view(problem, t, view.r_index)
            if [len(c) for c in pv.candidates] != [len(c) for c in view.candidates]:
                raise TableError(f"layer view of {t} does not match the search space")
            fixed, per_layer = pv.latency_matrix(self._bound_vec(problem, t, pv.r_index))
            out[t] = (fixed, [torch.tensor(v, dtype=torch.float32) for v in per_layer])
        return out

    @staticmethod
    def expected_latency(net: MixedNet, terms: dict) -> dict[str, torch.Tensor]:
        probs = net.probs()
        return {t: fixed + sum((p * v).sum() for p, v in zip(probs, per))
                for t, (fixed, per) in terms.items()}

    # ------------------------------------------------------------------ the loop
    def run(self, problem, rng: np.random.Generator) -> SearchResult:
        import torch

        # small kernels on a shared CPU: extra intra-op threads mostly spin and wait
        before = torch.get_num_threads()
        torch.set_num_threads(max(1, self.options.threads))
        try:
            return self._run(problem, rng)
        finally:
            torch.set_num_threads(before)

    def _run(self, problem, rng: np.random.Generator) -> SearchResult:
        import torch
        import torch.nn.functional as F

        from hwnas.train.data import resize

        o = self.options
        torch.manual_seed(int(rng.integers(2 ** 31)))
        ri = self._resolution(problem)
        view = layer_view(problem.space, ri)
        net, data, self._train_r, source = self._network(problem)
        terms = self._latency_terms(problem, view)
        trainable = [w for w in net.weights() if w.requires_grad]
        w_opt = torch.optim.SGD(trainable, lr=o.weight_lr, momentum=0.9, nesterov=True,
                                weight_decay=4e-5) if trainable else None
        a_opt = torch.optim.Adam(net.alphas(), lr=o.arch_lr, weight_decay=1e-3)
        x_tr, y_tr = resize(data.x_train, self._train_r), data.y_train
        x_va, y_va = resize(data.x_val, self._train_r), data.y_val
        warm = int(o.steps * o.warmup) if trainable else 0
        history = []
        net.train()
        for step in progress(range(o.steps), desc=self.name, disable=None if o.progress else True):
            rec = {"step": step}
            if w_opt is not None:
                i = torch.randint(0, len(y_tr), (o.batch_size,))
                self.configure(net, step, arch_step=False)
                w_opt.zero_grad(set_to_none=True)
                ce_w = F.cross_entropy(net(x_tr[i]), y_tr[i])
                ce_w.backward()
                w_opt.step()
                rec["ce_weights"] = float(ce_w.detach())
            if step >= warm:
                j = torch.randint(0, len(y_va), (o.arch_batch_size,))
                self.configure(net, step, arch_step=True)
                a_opt.zero_grad(set_to_none=True)
                ce = F.cross_entropy(net(x_va[j]), y_va[j])
                lat = self.expected_latency(net, terms)
                loss = self.arch_loss(ce, lat, problem)
                loss.backward()
                a_opt.step()
                rec.update({"ce_arch": float(ce.detach()), "loss": float(loss.detach()),
                            "expected_latency_ms": {t: float(v.detach()) for t, v in lat.items()}})
            if step % 10 == 0 or step == o.steps - 1:
                history.append(rec)
        self._source = source
        return self._finish(problem, net, view, terms, data, history, rng)

    def _network(self, problem):
        """(mixed net, dataset, training resolution, description of the weights)."""
        from hwnas._data import checkpoint_dir, is_checkpoint_file
        from hwnas.errors import DataError
        from hwnas.train.data import load_dataset

        o = self.options
        named = o.checkpoint or default_checkpoint(problem.space)
        if is_checkpoint_file(named):
            raise HwnasError(f"checkpoint {named} (Once-for-All's format) has no training data "
                             "here, which gradient strategies train on; use a strategy "
                             "that does not train, such as evolution")
        try:
            ckpt = checkpoint_dir(named) if named else None
        except DataError:
            if o.checkpoint or o.weights == "supernet":
                raise
            ckpt = None
        use_sup = o.weights == "supernet" or (o.weights == "auto" and ckpt is not None
                                              and space_plugin(problem.space).supernet is not None
                                              and (ckpt / "supernet.pt").exists())
        if o.weights not in ("auto", "supernet", "fresh"):
            raise HwnasError(f"option weights must be auto, supernet or fresh, got '{o.weights}'")
        if use_sup:
            from hwnas.train.checkpoint import checkpoint_dataset, load_supernet

            loaded = load_supernet(ckpt)
            if loaded.space.name != problem.space.name:
                raise HwnasError(f"checkpoint {ckpt} is for space '{loaded.space.name}'")
            r = o.train_resolution or max(loaded.space.resolutions)
            net = supernet_mixed_net(loaded, layer_view(problem.space, 0))
            return net, checkpoint_dataset(loaded.meta), r, f"trained supernet {ckpt} (frozen)"
        data = load_dataset(o.dataset)
        r = o.train_resolution or 32
        tspace = space_from_config({**problem.space.config(), "resolutions": [r],
                                    "num_classes": data.num_classes, "in_chans": data.in_chans})
        return build_mixed_net(layer_view(tspace, 0)), data, r, "fresh mixed-op supernet"

    # ------------------------------------------------------------------ derive, repair, report
    def _finish(self, problem, net, view, terms, data, history, rng) -> SearchResult:
        import torch

        o = self.options
        logp = [torch.log_softmax(a.detach(), 0).numpy() for a in net.alphas()]
        choice = net.argmax()
        soft = bool(problem.evaluate(view.genome(choice)[None]).feasible[0])
        choice, n_fix = self._repair(problem, view, choice, logp)
        genome = view.genome(choice)
        for ri in range(view.r_index - 1, -1, -1):            # stuck: try lower resolutions
            if problem.evaluate(genome[None], score=False).feasible[0]:
                break
            view = layer_view(problem.space, ri)
            choice, more = self._repair(problem, view, choice, logp)
            genome, n_fix = view.genome(choice), n_fix + more
        acc = self._supernet_accuracy(net, choice, data)
        archive = Archive(problem)
        samples = self._sample(view, logp, rng, o.samples)
        archive.add(samples, problem.evaluate(samples))
        archive.add(genome[None], problem.evaluate(genome[None]))
        info = {"options": vars(o), "resolution": view.resolution, "soft_feasible": soft,
                "weights": self._source, "train_resolution": self._train_r,
                "repair_changes": n_fix, "supernet_accuracy": acc,
                "expected_latency_ms": {t: float(v.detach()) for t, v in
                                        self.expected_latency(net, terms).items()},
                "layer_probs": [dict(zip(lbl, np.exp(lp).round(4).tolist()))
                                for lbl, lp in zip(view.labels, logp)],
                "archive": archive}
        return SearchResult(self.name, genome, problem.space.from_genome(genome), archive.front(),
                            history, problem.n_evals, 0.0, info)

    @staticmethod
    def _sample(view: LayerView, logp, rng, n: int) -> np.ndarray:
        cols = [rng.choice(len(lp), size=n, p=np.exp(lp) / np.exp(lp).sum()) for lp in logp]
        return np.stack([view.genome(c) for c in np.stack(cols, 1)]) if n else \
            np.zeros((0, len(view.space.choice_sizes())), np.int16)

    @staticmethod
    def _repair(problem, view: LayerView, choice: list[int], logp, rounds: int = 400):
        """Greedy single-layer changes until every hard constraint holds (bounded)."""
        cur = list(choice)
        for n in range(rounds):
            ev = problem.evaluate(view.genome(cur)[None], score=False)
            if ev.feasible[0]:
                return cur, n
            moves = [(l, c) for l, lp in enumerate(logp) for c in range(len(lp)) if c != cur[l]]
            nbrs = []
            for l, c in moves:
                nb = list(cur)
                nb[l] = c
                nbrs.append(view.genome(nb))
            nev = problem.evaluate(np.stack(nbrs), score=False)
            gain = ev.excess[0] - nev.excess
            cost = np.array([logp[l][cur[l]] - logp[l][c] for l, c in moves]) + 1e-3
            value = np.where(gain > 0, gain / np.maximum(cost, 1e-3), -np.inf)
            value = np.where(nev.feasible, value + 1e6 - cost, value)   # prefer feasible, likely
            if not np.isfinite(value.max()):
                break
            l, c = moves[int(np.argmax(value))]
            cur[l] = c
        return cur, rounds

    def _supernet_accuracy(self, net: MixedNet, choice: list[int], data) -> float:
        """Top-1 on the validation split with the derived arch, BN statistics recalibrated."""
        import torch

        with torch.no_grad():
            return self._accuracy_no_grad(net, choice, data)

    def _accuracy_no_grad(self, net: MixedNet, choice: list[int], data) -> float:
        import torch

        from hwnas.train.data import resize

        o = self.options
        net.set_choice(choice)
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        net.train()
        x = resize(data.x_train[:10 * o.batch_size], self._train_r)
        for b in range(0, len(x), o.batch_size):
            net(x[b:b + o.batch_size])
        net.eval()
        xv = resize(data.x_val[:o.eval_images], self._train_r)
        yv = data.y_val[:o.eval_images]
        correct = sum(int((net(xv[b:b + 256]).argmax(1) == yv[b:b + 256]).sum())
                      for b in range(0, len(yv), 256))
        return correct / max(len(yv), 1)


def budget_ratio(lat: dict[str, torch.Tensor], problem) -> torch.Tensor:
    """max over budgeted targets of expected latency / budget (1 = on the budget)."""
    import torch

    cons = problem.constraints
    if not cons.latency:
        raise BudgetError("gradient strategies need at least one latency budget")
    return torch.stack([lat[b.target] / b.budget_ms for b in cons.latency]).max()
