"""Sliced detection (`--slicing`): the tile grid, merging a box two tiles see into one, the
training crop, and `auto` turning slicing on for small objects in big pictures (data report,
config.json, `frelon eval` scoring and `frelon predict` writing the sliced predictions)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from frelon.engine.centernet import slicing
from frelon.engine.centernet.transforms import SliceCrop, eval_transform


@pytest.mark.parametrize("width,height,tile", [(200, 120, 64), (64, 64, 64), (50, 300, 64), (4032, 3024, 512)])
def test_tile_grid_covers_the_picture_with_overlap(width, height, tile):
    grid = slicing.tile_grid(width, height, tile)
    covered = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in grid:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert x2 - x1 == min(tile, width) and y2 - y1 == min(tile, height)
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    for starts, side in ((sorted({g[0] for g in grid}), width), (sorted({g[1] for g in grid}), height)):
        for a, b in zip(starts, starts[1:]):          # neighbours share at least a quarter of a tile
            assert a + tile - b >= tile * slicing.OVERLAP


@pytest.mark.parametrize("side,long_side,size,wanted", [
    (40, 4032, 512, True),        # a hornet in a phone photo: 5 px once letterboxed
    (200, 4032, 512, False),      # 25 px once letterboxed: found as it is
    (16, 64, 32, False),          # 8 px at a small --image-size, but a quarter of its picture
    (8, 600, 512, False),         # small, but the picture is hardly bigger than a tile
])
def test_auto_slices_objects_small_against_big_pictures(side, long_side, size, wanted):
    from frelon.common.train_config import TrainConfig
    objects = {"median_side": side, "median_fraction": side / long_side, "median_long_side": long_side}
    assert TrainConfig().resolved_slicing(objects, size) == ("on" if wanted else "off")
    assert TrainConfig(slicing="off").resolved_slicing(objects, size) == "off"


class BrightBoxDetector(torch.nn.Module):
    """An oracle detector: in each view it finds the pixels brighter than 0.9 (the object is white
    on black; padding is grey) and answers CenterNet's maps for their bounding box, scoring larger
    boxes higher. It sees only what a view shows: a tile cutting the object sees a cut box."""
    stride = 4

    def forward(self, x):
        b, _, h, w = x.shape
        heat = torch.full((b, 1, h // 4, w // 4), -10.0)
        size, offset = torch.zeros(b, 2, h // 4, w // 4), torch.zeros(b, 2, h // 4, w // 4)
        for i in range(b):
            ys, xs = torch.nonzero(x[i].min(0).values > 0.9, as_tuple=True)
            if not len(xs):
                continue
            x1, y1, x2, y2 = xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1
            cx, cy = (x1 + x2) / 2 / 4, (y1 + y2) / 2 / 4
            heat[i, 0, int(cy), int(cx)] = (x2 - x1) * (y2 - y1) / 100
            size[i, :, int(cy), int(cx)] = torch.tensor([(x2 - x1) / 4, (y2 - y1) / 4])
            offset[i, :, int(cy), int(cx)] = torch.tensor([cx - int(cx), cy - int(cy)])
        return {"heatmap": heat, "size": size, "offset": offset}


def test_a_box_split_by_a_tile_border_is_found_once():
    """Tiles of 64 px start every 48 px: the object at x 56..80 is cut by the first tile's right
    border (x 64) and by the third's left one (x 96 is past it: whole in the second, 48..112)."""
    array = np.zeros((120, 200, 3), np.uint8)
    array[30:50, 56:80] = 255
    image = Image.fromarray(array)
    transform = eval_transform(64, (0, 0, 0), (1, 1, 1))
    det = slicing.sliced_detections(BrightBoxDetector(), image, 64, transform, "cpu")
    keep = det.scores > 0.5
    assert int(keep.sum()) == 1, det
    assert torch.allclose(det.boxes[keep][0], torch.tensor([56.0, 30.0, 80.0, 50.0]), atol=0.5)


def test_slice_crop_holds_an_object_at_native_resolution():
    torch.manual_seed(0)
    image = tv_tensors.Image(torch.zeros(3, 600, 800, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[700.0, 500.0, 712.0, 510.0]]), format="XYXY",
                                     canvas_size=(600, 800))
    crop = SliceCrop(64, around=1.0)
    for _ in range(20):
        out, moved = crop(image, boxes)
        assert out.shape[-2:] == (64, 64)
        x1, y1, x2, y2 = moved[0].tolist()
        assert (x2 - x1, y2 - y1) == (12.0, 10.0) and x1 >= 0 and y1 >= 0 and x2 <= 64 and y2 <= 64


def _big_picture_set(root, pictures: int = 4):
    """320 × 240 JPEGs, each with two 8-px white squares: objects of 2.5 % of the picture."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(pictures):
        array = rng.integers(0, 80, (240, 320, 3), dtype=np.uint8)
        for k in range(2):
            x, y = int(rng.integers(10, 300)), int(rng.integers(10, 220))
            array[y:y + 8, x:x + 8] = 255
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                                "bbox": [x, y, 8, 8], "area": 64, "iscrowd": 0})
        Image.fromarray(array).save(root / f"p{i}.jpg", quality=90)
        images.append({"id": i + 1, "file_name": f"p{i}.jpg", "width": 320, "height": 240})
    doc = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "square"}]}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


def test_auto_slices_small_objects_in_big_pictures_and_eval_scores_the_tiles(tmp_path, monkeypatch):
    from runhelp import events_of, train_here

    from frelon.engine.centernet import predict
    from frelon.engine.inference import load_run
    (tmp_path / "set").mkdir()
    (tmp_path / "one").mkdir()
    data = _big_picture_set(tmp_path / "set")
    run = train_here("--data", data, "--backbone", "resnet18", "--weights", "none", "--image-size", "64",
                     "--epochs", "1", "--batch-size", "3", "--workers", "0", "--val-split", "0.25",
                     "--out", tmp_path / "runs")
    report = next(e for e in events_of(run) if e["type"] == "data_report")
    assert report["objects"]["median_side"] == 8.0
    # the data report's note speaks of the automatic image size: these 320-px pictures are trained
    # whole at it (320), 800-px ones with these objects would be sliced (512)
    from frelon.engine.data.detection.report import slicing_note
    assert not any("--slicing auto trains" in w for w in report["warnings"]), report["warnings"]
    assert "--slicing auto trains on 512-px crops" in slicing_note({**report["objects"], "median_long_side": 800,
                                                                   "median_fraction": 8 / 800}, [800, 600])
    assert json.loads((run / "config.json").read_text())["slicing"] == "on"
    calls = []
    real = predict.sliced_detections
    monkeypatch.setattr(predict, "sliced_detections", lambda *a, **k: calls.append(1) or real(*a, **k))
    loaded = load_run(run)
    one = _big_picture_set(tmp_path / "one", pictures=1)
    metrics = predict.evaluate_detection(loaded, str(one))
    assert metrics["images"] == 1 and len(calls) == 1
    results, _ = predict.predict_detection(loaded, [{"path": str(one / "p0.jpg"), "file_name": "p0.jpg"}])
    assert len(calls) == 2 and all(r["file_name"] == "p0.jpg" for r in results)
