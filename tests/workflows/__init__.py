"""Everyday Keras workflows tried as a new user would (issue 22): saved models loaded in
a new process, Polyak averaging beside Keras' callbacks, curvature through BatchNorm and
on a diverging run, the CLI on saved models, the declared minimum versions. One module
per area, beside the bad-input table (tests/bad_inputs/)."""
