"""Images with captions: the training data of text-to-image generators (a VOC-layout folder + captions json).

The captions come from a COCO-format captions file in the root (the shapes data writes
``captions.json``; :func:`wsss.data.captions.read_captions` reads it). Every listed image needs at
least one caption.
"""

from __future__ import annotations

import random
from typing import Any

from wsss.data.captions import read_captions
from wsss.data.dataset import ImageLabelDataset
from wsss.fileio import first_items
from wsss.registry import DATASETS


@DATASETS.register_module()
class CaptionedImageDataset(ImageLabelDataset):
    """:class:`~wsss.data.dataset.ImageLabelDataset` whose samples also carry a ``caption``.

    ``caption_file``: the captions json, relative to ``data_root``. ``random_caption``: each read picks
    one of the image's captions at random (training); otherwise its first (evaluation, reproducible).
    Masks are not read unless ``with_mask=True``.
    """

    def __init__(self, *args: Any, caption_file: str = "captions.json", random_caption: bool = True,
                 with_mask: bool = False, **kwargs: Any):  # fmt: skip
        super().__init__(*args, with_mask=with_mask, **kwargs)
        path = self.data_root / caption_file
        table = read_captions(path)
        missing = [img_id for img_id in self.img_ids if not table.get(img_id)]
        if missing:
            raise ValueError(
                f"{path}: no caption for {len(missing)} of the {len(self.img_ids)} images of split '{self.split}' "
                f"(first: {first_items(missing)}); caption every listed image or fix the split list"
            )
        self.captions = [table[img_id] for img_id in self.img_ids]
        self.random_caption = random_caption

    def all_captions(self) -> list[str]:
        """Every caption of every image of the split, in order."""
        return [text for texts in self.captions for text in texts]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)
        # The parent may have served another image in place of an unreadable one: caption the one served.
        texts = self.captions[self.img_ids.index(item["data_samples"]["img_id"])] if self.skip_corrupt else self.captions[index]
        item["data_samples"]["caption"] = random.choice(texts) if self.random_caption else texts[0]
        return item
