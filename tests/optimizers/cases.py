"""The table every shared optimizer test runs over: one row per public optimizer,
with a learning rate that trains the digits MLP in a few epochs."""

import keras_optlab as ko

OPTIMIZERS = {
    "SGD": lambda **kw: ko.SGD(learning_rate=0.1, **kw),
    "Momentum": lambda **kw: ko.Momentum(learning_rate=0.02, momentum=0.9, **kw),
    "Nesterov": lambda **kw: ko.Nesterov(learning_rate=0.02, momentum=0.9, **kw),
    "AdaGrad": lambda **kw: ko.AdaGrad(learning_rate=0.05, **kw),
    "RMSProp": lambda **kw: ko.RMSProp(learning_rate=0.002, **kw),
    "NesterovRMSProp": lambda **kw: ko.NesterovRMSProp(learning_rate=0.0005, **kw),
    "Adam": lambda **kw: ko.Adam(learning_rate=0.003, **kw),
}
NAMES = sorted(OPTIMIZERS)
