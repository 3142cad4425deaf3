"""`--augment light | randaugment` and `--random-erasing P` (engine/classify/transforms.py): each does what
the README says on pictures whose answer is known, and `frelon train` wires the chosen one into
the training set (the validation set stays unaugmented)."""
from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms import v2

from frelon.engine.classify import transforms as T
from frelon.common.train_config import from_dict
from frelon.engine.training.run import Trainer, run_training

from runhelp import recording_writer

MEAN, STD = [0.5] * 3, [0.25] * 3


def halves(w: int = 48, h: int = 40) -> Image.Image:
    """Left half red, right half blue: a mirror swaps them."""
    im = Image.new("RGB", (w, h), (220, 20, 20))
    im.paste((20, 20, 220), (w // 2, 0, w, h))
    return im


def outputs(tf, image, n: int = 40) -> list[torch.Tensor]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(tf(image))
    return out


def distinct(tensors) -> int:
    return len({t.numpy().tobytes() for t in tensors})


def test_light_is_resize_and_flip_only():
    tf = T.train_transform(32, MEAN, STD, "light")
    plain = v2.Compose([v2.Resize(32, antialias=True), v2.CenterCrop(32), v2.ToImage(),
                        v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])(halves())
    got = outputs(tf, halves())
    assert {("plain" if torch.equal(t, plain) else "mirror" if torch.equal(t, plain.flip(-1)) else "other")
            for t in got} == {"plain", "mirror"}                     # nothing else: no crop, no colour
    assert distinct(outputs(T.train_transform(32, MEAN, STD, "light", flip=False), halves())) == 1


def test_randaugment_changes_what_crop_and_flip_cannot():
    """On a picture of one flat colour, a crop or a flip changes nothing: only RandAugment's
    colour and geometry operations can make the outputs differ (light keeps them identical)."""
    flat = Image.new("RGB", (48, 40), (150, 100, 60))
    assert distinct(outputs(T.train_transform(32, MEAN, STD, "light"), flat)) == 1
    rand = outputs(T.train_transform(32, MEAN, STD, "randaugment"), flat)
    assert distinct(rand) >= 10
    assert all(t.shape == (3, 32, 32) and t.dtype == torch.float32 for t in rand)
    assert any(isinstance(op, v2.RandAugment) for op in T.train_transform(32, MEAN, STD, "randaugment").transforms)


def test_random_erasing_blanks_one_rectangle_with_probability_p():
    flat = Image.new("RGB", (48, 40), (150, 100, 60))      # normalised: no pixel is 0 before erasing
    erased = outputs(T.train_transform(32, MEAN, STD, "light", random_erasing=1.0), flat, n=20)
    for t in erased:
        zero = (t == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) and len(cols), "p = 1: every picture is erased"
        box = zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all(), "one solid rectangle"
        assert 0.02 * 32 * 32 <= box.numel() <= 0.33 * 32 * 32 + 32      # torchvision's default scale
    kept = outputs(T.train_transform(32, MEAN, STD, "light", random_erasing=0.0), flat, n=20)
    assert all(not (t == 0).all(0).any() for t in kept)
    half = outputs(T.train_transform(32, MEAN, STD, "light", random_erasing=0.5), flat, n=60)
    share = sum(bool((t == 0).all(0).any()) for t in half) / len(half)
    assert 0.25 < share < 0.75


def test_train_wires_the_chosen_augmentation_into_the_training_set_only(colour_data, tmp_path):
    base = dict(data=str(colour_data), image_size=32, batch_size=4, weights="none", workers=0, epochs=1,
                backbone="resnet18", out=str(tmp_path))
    for augment, erasing, expect, absent in (("randaugment", 0.5, {v2.RandAugment, v2.RandomErasing}, {v2.ColorJitter}),
                                             ("light", 0.0, {v2.Resize, v2.CenterCrop},
                                              {v2.RandAugment, v2.RandomErasing, v2.RandomResizedCrop})):
        writer, _ = recording_writer()
        trainer = Trainer(from_dict(dict(base, augment=augment, random_erasing=erasing)), writer, lambda: False)
        trainer.setup()
        train_set, val_set = trainer.train_loader.dataset, trainer.val_loader.dataset
        train_set = getattr(train_set, "dataset", train_set)         # under the per-sample seeding wrapper
        val_set = getattr(val_set, "dataset", val_set)
        train_ops = {type(op) for op in train_set.transform.transforms}
        val_ops = {type(op) for op in val_set.transform.transforms}
        assert expect <= train_ops and not absent & train_ops, (augment, train_ops)
        assert not {v2.RandAugment, v2.RandomErasing, v2.RandomHorizontalFlip} & val_ops
    # and a real run trains through it
    writer, emitted = recording_writer()
    result = run_training(from_dict(dict(base, augment="randaugment", random_erasing=0.5, max_steps=2)),
                          writer, lambda: False)
    assert result["status"] == "completed" and result["steps_done"] == 2
    assert [e["step"] for e in emitted if e["type"] == "step"][-1] == 2
