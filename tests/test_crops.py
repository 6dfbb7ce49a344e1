"""``train.augment.random_resized_crop`` against torchvision's ``RandomResizedCrop`` itself."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import functional as TF

from ban.core.config import params_from_mapping
from ban.core.errors import ConfigError
from ban.training.crops import crop_boxes, resized_crops

CPU = torch.device("cpu")
SCALE, RATIO = [0.08, 1.0], [3 / 4, 4 / 3]


def boxes(count: int, height: int, width: int, scale: list[float] = SCALE, ratio: list[float] = RATIO,
          seed: int = 0) -> torch.Tensor:
    return crop_boxes(count, height, width, scale, ratio, torch.Generator().manual_seed(seed), CPU)


def test_each_box_is_resized_as_torchvision_resizes_the_crop():
    """``TF.resized_crop`` (bilinear, no antialiasing) of each image's box, on float pixels."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (40, 3, 20, 24), dtype=torch.uint8, generator=generator)
    drawn = boxes(40, 20, 24)
    expected = torch.stack([TF.resized_crop(image.float(), *box.tolist(), [20, 24], antialias=False)
                            for image, box in zip(images, drawn, strict=True)])
    torch.testing.assert_close(resized_crops(images, drawn), expected, rtol=0, atol=1e-3)


def test_boxes_lie_in_the_image_within_the_scale_and_ratio_ranges():
    drawn = boxes(4000, 32, 48)
    top, left, height, width = drawn.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + height <= 32).all() and (left + width <= 48).all()
    # rounding each side to whole pixels moves the area and the ratio by at most half a pixel a side
    area = height * width / (32 * 48)
    assert (area >= SCALE[0] * 0.75).all() and (area <= SCALE[1]).all()
    ratio = width / height
    slack = (width + 0.5) / (height - 0.5) / ratio
    assert (ratio <= RATIO[1] * slack).all() and (ratio >= RATIO[0] / slack).all()


def summary(drawn: torch.Tensor, height: int, width: int) -> tuple[float, float]:
    """Mean share of the image's area and mean log aspect ratio (width / height) of [N, 4] boxes."""
    heights, widths = drawn[:, 2].double(), drawn[:, 3].double()
    return (heights * widths / (height * width)).mean().item(), torch.log(widths / heights).mean().item()


def test_the_distribution_matches_torchvision_get_params():
    """4000 boxes each (standard errors about 0.005): the share of the area and the log ratio agree."""
    torch.manual_seed(0)
    image = torch.zeros(3, 32, 48)
    theirs = torch.tensor([RandomResizedCrop.get_params(image, SCALE, RATIO) for _ in range(4000)])
    ours = summary(boxes(4000, 32, 48), 32, 48)
    assert ours == pytest.approx(summary(theirs, 32, 48), abs=0.02)


@pytest.mark.parametrize("ratio", [[2.0, 3.0], [0.2, 0.3], [0.5, 2.0]])
def test_a_box_that_never_fits_falls_back_to_torchvision_centre_crop(ratio):
    """A scale above 1 fits no try: torchvision then returns a deterministic centre box."""
    image = torch.zeros(3, 20, 24)
    expected = list(RandomResizedCrop.get_params(image, [2.0, 3.0], ratio))
    assert boxes(5, 20, 24, scale=[2.0, 3.0], ratio=ratio).tolist() == [expected] * 5


def test_the_whole_image_comes_back_unchanged():
    images = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    whole = torch.tensor([[0, 0, 8, 8]] * 3)
    assert torch.equal(resized_crops(images, whole), images.float())


@pytest.mark.parametrize(("crop", "message"), [
    ({"scale": [0.5, 0.2]}, "scale: give [low, high] with 0 < low <= high <= 1, got [0.5, 0.2]"),
    ({"scale": [0.5, 1.5]}, "scale: give [low, high] with 0 < low <= high <= 1, got [0.5, 1.5]"),
    ({"ratio": [0.0, 1.0]}, "ratio: give [low, high] with 0 < low <= high, got [0.0, 1.0]"),
    ({"ratio": [1.0]}, "ratio: give [low, high] with 0 < low <= high, got [1.0]"),
])
def test_bad_ranges_are_one_line(crop, message):
    with pytest.raises(ConfigError) as error:
        params_from_mapping({"train": {"augment": {"random_resized_crop": crop}}})
    assert str(error.value) == f"train.augment.random_resized_crop.{message}"


def test_empty_mapping_takes_torchvision_defaults():
    params = params_from_mapping({"train": {"augment": {"random_resized_crop": {}}}})
    crop = params.train.augment.random_resized_crop
    assert crop.scale == [0.08, 1.0] and crop.ratio == [3 / 4, 4 / 3]
    assert params_from_mapping({}).train.augment.random_resized_crop is None
