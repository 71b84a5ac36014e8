import numpy as np
import pytest

from hbens.maps.upsample import source_box, upsample_crop

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("h, w, height, width", [(64, 64, 256, 256), (50, 70, 200, 333), (16, 16, 2048, 2048),
                                                 (40, 40, 40, 40), (64, 48, 96, 80)])
def test_crop_equals_full_frame_interpolation(rng, h, w, height, width):
    import torch.nn.functional as F

    logits = rng.normal(size=(h, w)).astype(np.float32)
    full = F.interpolate(torch.from_numpy(logits)[None, None], size=(height, width), mode="bilinear",
                         align_corners=False)[0, 0].numpy()
    for box in [(0, 0, height, width), (height // 5, width // 7, height - 3, width // 2 + 1), (height - 1, 0, height, 1)]:
        crop = upsample_crop(logits, (height, width), box)
        assert np.abs(crop - full[box[0] : box[2], box[1] : box[3]]).max() < 1e-4


def test_source_box_holds_every_influenced_pixel(rng):
    import torch.nn.functional as F

    for h, w, height, width in [(32, 32, 2048, 2048), (30, 50, 97, 201), (64, 64, 64, 64)]:
        above = rng.random((h, w)) < 0.01
        if not above.any():
            above[h // 2, w // 3] = True
        logits = np.where(above, 5.0, -20.0).astype(np.float32)
        full = F.interpolate(torch.from_numpy(logits)[None, None], size=(height, width), mode="bilinear",
                             align_corners=False)[0, 0].numpy()
        top, left, bottom, right = source_box(above.any(axis=1), above.any(axis=0), (height, width))
        outside = np.ones((height, width), bool)
        outside[top:bottom, left:right] = False
        assert full[outside].max(initial=-20.0) <= -20.0 + 1e-4
    assert source_box(np.zeros(4, bool), np.zeros(4, bool), (8, 8)) is None
