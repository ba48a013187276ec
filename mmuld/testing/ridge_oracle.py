# Copyright (c) mmuld contributors. All rights reserved.
"""A closed-form ridge regression: the tests' reference for the NME
evaluator's regressor (written independently of it)."""
import numpy as np


def oracle_ridge(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray,
                 alpha_rel: float) -> np.ndarray:
    """Centred ridge regression with penalty ``alpha_rel * max(Xc^T Xc)``.

    Args:
        x_tr (np.ndarray): ``(n, p)`` training inputs.
        y_tr (np.ndarray): ``(n, q)`` training targets.
        x_te (np.ndarray): ``(m, p)`` test inputs.
        alpha_rel (float): Penalty relative to the largest entry of the
            centred Gram matrix.

    Returns:
        np.ndarray: ``(m, q)`` predictions for ``x_te``.
    """
    xm, ym = x_tr.mean(0), y_tr.mean(0)
    xc = x_tr - xm
    gram = xc.T @ xc
    w = np.linalg.solve(gram + alpha_rel * gram.max() * np.eye(len(gram)),
                        xc.T @ (y_tr - ym))
    return (x_te - xm) @ w + ym
