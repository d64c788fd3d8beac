"""Former home of :class:`~keras_optlab.second_order.SecondOrder` (kept importable)."""

from keras_optlab.second_order import SecondOrder

__all__ = ["SecondOrder"]
