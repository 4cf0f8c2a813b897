"""Curvature of a loss (lecture 4): Hessian-vector products, dense Hessians, Lanczos,
spectral density, critical-point classification and saddle escape.

  hvp.py       H @ v by jvp-of-grad, over pytrees and over datasets in batches
  dense.py     the full Hessian of a small model (ravel_pytree order)
  lanczos.py   Lanczos with full reorthogonalization; top/bottom eigenpairs; SLQ density
  critical.py  classify_spectrum / classify_critical_point / escape_saddle
  search.py    find critical points by minimizing the gradient norm (Adam, then LM with
               Cholesky-solved damped steps, `DampedSystem`)
"""

from leeml.curvature.critical import (FLAT, LOCAL_MAX, LOCAL_MIN, SADDLE, CriticalPoint,
                                      classify_critical_point, classify_spectrum,
                                      escape_saddle, zero_tolerance)
from leeml.curvature.dense import dense_hessian, eigh, hessian_spectrum
from leeml.curvature.hvp import (FlatOperator, dataset_grad, dataset_hvp, dataset_loss,
                                 dataset_operator, hvp, loss_operator, model_batch_loss,
                                 stack_batches)
from leeml.curvature.lanczos import (LanczosResult, SpectralDensity, bottom_eigenvalues,
                                     extreme_eigenpairs, lanczos, ritz, spectral_density,
                                     top_eigenvalues)
from leeml.curvature.search import (DampedSystem, SearchResult, make_gradient_norm_minimizer,
                                    max_abs_eigenvalue)
