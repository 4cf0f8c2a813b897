"""Dataset registry: a config section `dataset` = {name, **that dataset's fields}.

Every dataset registers a `DatasetSpec`: a loader `cfg -> leeml.data.Dataset` and its
configurable fields with defaults (the defaults give the types `leeml.config` checks).
Everything registered here exists offline: generated from a seed, or built by a tfds
builder from data shipped inside a pip package and cached on first use.
"""

import dataclasses
from typing import Any, Callable, Mapping

from leeml import data
from leeml.datasets import synthetic


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str
  load: Callable[[Any], data.Dataset]
  fields: Mapping[str, Any]
  description: str


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
  if spec.name in DATASETS:
    raise ValueError(f"dataset {spec.name!r} is registered twice")
  DATASETS[spec.name] = spec
  return spec


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(f"dataset.name={name!r} is not one of: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def dataset_fields(name: str) -> dict[str, Any]:
  """The configurable fields of dataset `name` (besides `name`), with defaults."""
  return dict(get_spec(name).fields)


def get_dataset(cfg) -> data.Dataset:
  """Loads the dataset a config section names; fields it omits take their defaults."""
  spec = get_spec(cfg.name)
  values = dict(spec.fields)
  values.update({k: v for k, v in dict(cfg).items() if k != "name"})
  return spec.load(_Fields(name=cfg.name, **values))


class _Fields(dict):
  """Attribute access to a dict of fields (what loaders read)."""
  __getattr__ = dict.__getitem__


register(DatasetSpec(
    "gaussian_blobs", synthetic.gaussian_blobs,
    dict(num_train=4096, num_test=1024, num_classes=10, input_shape=(16,), noise=0.3, seed=0),
    "Gaussian clusters around random unit-norm centres, one per class."))
register(DatasetSpec(
    "template_images", synthetic.template_images,
    dict(num_train=4096, num_test=1024, num_classes=10, input_shape=(16, 16, 1), noise=1.0,
         seed=0),
    "One smooth random template per class, shifted by up to 2 pixels, plus noise."))
