"""Fitting SMPL parameters to meshes: from a predicted mesh to a usable, animatable body.

:func:`fit_smpl` turns meshes of a body's topology (a PostureHMR prediction, a scan registered to
SMPL, ...) into SMPL pose, shape and translation, batched: a closed-form start
(:mod:`kinediff.fit.analytic`) and a few Levenberg-Marquardt iterations on the vertex error
(:mod:`kinediff.fit.refine`, with the Jacobian of :mod:`kinediff.fit.jacobian` on a vertex subset,
:mod:`kinediff.fit.subset`).
"""

from kinediff.fit.smpl import FitResult, fit_smpl

__all__ = ["FitResult", "fit_smpl"]
