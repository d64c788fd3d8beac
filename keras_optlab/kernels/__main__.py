"""``python -m keras_optlab.kernels``: build the CPU kernels now and print their path."""

from keras_optlab.kernels import build

print(build())
