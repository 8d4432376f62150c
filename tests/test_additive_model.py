"""The additive model the knapsack's model steps price changes with."""
import numpy as np

from hwnas.search._additive import AdditiveModel
from hwnas.search.layers import layer_view
from hwnas.spaces import get_space


def _views_and_sizes(space):
    views = [layer_view(space, r) for r in range(len(space.resolutions))]
    g = space.sample_genomes(np.random.default_rng(0), 1)[0]
    choice = views[int(g[-1])].choice(g)
    sizes = [1 + max(max(v.choice(x)[i] for v in views for x in
                         space.sample_genomes(np.random.default_rng(1), 200)), 0)
             for i in range(len(choice))]
    return views, sizes


def test_an_additive_objective_is_recovered_exactly():
    space = get_space("ofa-mbv3")
    views, sizes = _views_and_sizes(space)
    rng = np.random.default_rng(2)
    true = [rng.normal(size=n) for n in sizes]
    res = rng.normal(size=len(views))
    g = space.sample_genomes(rng, 1500)
    score = np.array([sum(true[i][c] for i, c in enumerate(views[int(x[-1])].choice(x)))
                      + res[int(x[-1])] for x in g])
    model = AdditiveModel.fit(views, sizes, g, score, ridge=1e-6)
    choice = views[int(g[0, -1])].choice(g[0])
    seen = np.zeros(sum(sizes), bool)
    for x in g:
        seen[np.cumsum([0] + sizes[:-1]) + views[int(x[-1])].choice(x)] = True
    offsets = np.cumsum([0] + sizes[:-1])
    for i, (est, w) in enumerate(zip(model.gains(choice), true)):
        for c in range(sizes[i]):
            if seen[offsets[i] + c] and seen[offsets[i] + choice[i]]:
                assert abs(est[c] - (w[c] - w[choice[i]])) < 1e-4


def test_gains_are_zero_at_the_incumbent():
    space = get_space("ofa-mbv3")
    views, sizes = _views_and_sizes(space)
    g = space.sample_genomes(np.random.default_rng(3), 400)
    model = AdditiveModel.fit(views, sizes, g, np.random.default_rng(4).normal(size=400))
    choice = views[int(g[5, -1])].choice(g[5])
    assert all(est[c] == 0.0 for est, c in zip(model.gains(choice), choice))
