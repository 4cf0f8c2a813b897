"""Model registry: a config section `model` = {name, **fields of that model's module}."""

import dataclasses

import flax.linen as nn

from leeml.models.cnn import CNN
from leeml.models.locally_connected import LocallyConnectedNet
from leeml.models.mlp import MLP
from leeml.models.residual_mlp import ResidualMLP
from leeml.models.spatial_transformer import STCNN
from leeml.models.vit import ViT

MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "residual_mlp": ResidualMLP,
    "cnn": CNN,
    "locally_connected": LocallyConnectedNet,
    "st_cnn": STCNN,
    "vit": ViT,
}

# Module fields set by the training core, not by the `model` config section.
_RESERVED = ("parent", "name", "num_outputs")


def model_fields(name: str) -> dict[str, dataclasses.Field]:
  """The configurable fields of model `name` (its Linen dataclass fields, minus reserved)."""
  cls = get_model_class(name)
  return {f.name: f for f in dataclasses.fields(cls) if f.name not in _RESERVED and f.init}


def get_model_class(name: str) -> type[nn.Module]:
  if name not in MODELS:
    raise ValueError(f"model.name={name!r} is not one of: {', '.join(sorted(MODELS))}")
  return MODELS[name]


def get_model(model_cfg, num_outputs: int) -> nn.Module:
  """Instantiates the model named by `model_cfg.name` with the other fields as kwargs."""
  kwargs = {k: v for k, v in dict(model_cfg).items() if k != "name"}
  for k, v in kwargs.items():
    if isinstance(v, list):
      kwargs[k] = tuple(v)
  return get_model_class(model_cfg.name)(num_outputs=num_outputs, **kwargs)
