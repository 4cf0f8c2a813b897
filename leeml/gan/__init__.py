"""Lecture 14 (GANs): models, losses by name, the alternating step, 2-D mixture metrics."""

from leeml.gan.losses import GAN_LOSSES, GanLoss, get_gan_loss, gradient_penalty
from leeml.gan.models import MLPCritic, MLPGenerator
from leeml.gan.step import GANState, init_gan_state, jit_gan_step, make_gan_step
from leeml.gan.train import gan_config, make_gan_optimizers, train_gan

__all__ = ["GAN_LOSSES", "GANState", "GanLoss", "MLPCritic", "MLPGenerator", "get_gan_loss",
           "gradient_penalty", "init_gan_state", "jit_gan_step", "make_gan_step",
           "gan_config", "make_gan_optimizers", "train_gan"]
