"""Bad inputs: the line-search optimizers (NonlinearCG, LBFGS) and their ``minimize``
(see tests/bad_inputs/__init__.py). Every row runs on every backend."""

import keras
import numpy as np

from tests.bad_inputs import Bad


def _lbfgs(**kwargs):
    from keras_optlab.optimizers import LBFGS

    return LBFGS(**kwargs)


def _cg(**kwargs):
    from keras_optlab.optimizers import NonlinearCG

    return NonlinearCG(**kwargs)


def _minimize(**kwargs):
    variable = keras.Variable(np.ones(3))
    return _lbfgs().minimize(lambda: keras.ops.sum(variable**2), [variable], **kwargs)


ROWS = [
    Bad(lambda: _lbfgs(history=0), ValueError, "history", "history=0"),
    Bad(lambda: _lbfgs(history=2.5), TypeError, "history", "history=2.5"),
    Bad(lambda: _lbfgs(line_search="exact"), ValueError, "line_search", "line_search='exact'"),
    Bad(lambda: _lbfgs(max_evaluations=0), ValueError, "max_evaluations", "max_evaluations=0"),
    Bad(lambda: _lbfgs(c1=0.0), ValueError, "c1", "c1=0.0"),
    Bad(lambda: _lbfgs(c2=1.0), ValueError, "c2", "c2=1.0"),
    Bad(lambda: _lbfgs(c1=0.5, c2=0.4), ValueError, "c2", "c2=0.4"),
    Bad(lambda: _lbfgs(c1="small"), TypeError, "c1", "c1='small'"),
    Bad(lambda: _lbfgs(learning_rate=-1.0), ValueError, "learning_rate", "learning_rate=-1.0"),
    Bad(lambda: _lbfgs(global_clipnorm=1.0), ValueError, "global_clipnorm", "global_clipnorm=1.0"),
    Bad(lambda: _lbfgs(skip_nonfinite="yes"), TypeError, "skip_nonfinite", "skip_nonfinite='yes'"),
    Bad(lambda: _cg(beta="hestenes_stiefel"), ValueError, "beta", "beta='hestenes_stiefel'"),
    Bad(lambda: _cg(restart=0), ValueError, "restart", "restart=0"),
    # echoed by its repr: np.float64(3.0) on NumPy 2, 3.0 on 1.26
    Bad(lambda: _cg(restart=np.float64(3.0)), TypeError, "restart", f"restart={np.float64(3.0)!r}"),
    Bad(lambda: _cg(restart_threshold=0.0), ValueError, "restart_threshold", "restart_threshold=0.0"),
    Bad(lambda: _cg(restart_threshold=1.5), ValueError, "restart_threshold", "restart_threshold=1.5"),
    Bad(lambda: _cg(weight_decay=0.1), ValueError, "weight_decay", "weight_decay=0.1"),
    Bad(lambda: _minimize(steps=0), ValueError, "steps", "steps=0"),
    Bad(lambda: _minimize(gradient_tolerance=-1.0), ValueError, "gradient_tolerance", "gradient_tolerance=-1.0"),
    Bad(lambda: _minimize(callback="print"), TypeError, "callback", "callback='print'"),
    Bad(lambda: _lbfgs().minimize("loss", [keras.Variable(np.ones(3))]), TypeError, "loss_fn", "loss_fn='loss'"),
]
