import numpy as np

from semc.motioncorrection.calc.internal.local_model import fit_local_model


def _truth(x, y, f, shape, ref, n, cx, cy):
    u, v = x / shape[1] - 0.5, y / shape[0] - 0.5
    t = (f - ref) / n
    s = np.stack([np.ones_like(u), u, u * u, v, v * v, u * v], -1)
    tt = np.stack([t, t * t, t**3], -1)
    basis = s[:, :, None] * tt[:, None, :]
    return np.stack([np.einsum("mst,st->m", basis, cx), np.einsum("mst,st->m", basis, cy)], -1)


def test_fit_recovers_a_known_model_despite_outliers():
    rng = np.random.default_rng(0)
    shape, n, ref = (1000, 1500), 20, 10
    cx, cy = rng.normal(0, 2, (6, 3)), rng.normal(0, 2, (6, 3))
    gx, gy = np.meshgrid(np.linspace(150, 1350, 5), np.linspace(100, 900, 5))
    x = np.repeat(gx.ravel(), n)
    y = np.repeat(gy.ravel(), n)
    f = np.tile(np.arange(n), 25)
    obs = _truth(x, y, f, shape, ref, n, cx, cy) + rng.normal(0, 0.02, (x.size, 2))
    obs[::37] += 15.0  # gross outliers
    model = fit_local_model(x_px=x, y_px=y, frame=f, residual_motion_px=obs, image_shape=shape,
                            reference_frame=ref, n_frames=n)
    clean = _truth(x, y, f, shape, ref, n, cx, cy)
    pred = model.motion_px(x_px=x, y_px=y, frame=f)
    assert np.sqrt(np.mean((pred - clean) ** 2)) < 0.02
    assert model.n_rejected >= (x.size + 36) // 37
    assert np.allclose(model.motion_px(x_px=x, y_px=y, frame=np.full_like(f, ref)), 0)
