"""Image GAN metrics from an in-project digit classifier (lecture 14, "evaluation of GAN").

The lecture judges generated images with an image classifier: quality = the classifier is
confident about each sample (low-entropy p(y|x)); diversity = the classes of all samples
together are spread out (high-entropy p(y) = mean of p(y|x)). Here the classifier is the
lecture-9 CNN (`leeml.models.cnn.CNN`) trained on the embedded digits' train split, and:

  inception_score   IS = exp(E_x KL(p(y|x) || p(y))) (Salimans et al., 2016): 1 when
                    every sample gets the same prediction, K when K classes are predicted
                    with certainty equally often.
  frechet_distance  |μ1 - μ2|² + tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½) between Gaussians fitted to
                    the classifier's penultimate features (the ReLU outputs of its
                    dense layer) of two image sets: the formula of FID (Heusel et al.,
                    2017), but on THIS classifier's features. It is NOT the Inception-v3
                    FID: the numbers are on another scale and are not comparable to
                    published FIDs; they compare runs of this project with each other and
                    with references measured the same way (e.g. real train vs test).
  class_histogram   the share of samples the classifier assigns to each class; a class
                    whose share is below a threshold is a dropped mode (mode dropping,
                    lecture 14).

The Fréchet distance of two sample sets is biased upward by the finite sample sizes, so
compare distances only between sets of equal sizes.
"""

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from leeml import data, population
from leeml.models.cnn import CNN


def classifier_config() -> ml_collections.ConfigDict:
  """The digit classifier and its training (defaults: ~98% test accuracy on 8x8 digits)."""
  return ml_collections.ConfigDict(dict(
      seed=0, channels=(16, 32), dense_width=64, steps=600, batch_size=64,
      learning_rate=2e-3))


@dataclasses.dataclass(frozen=True)
class DigitClassifier:
  """A trained CNN; `probabilities` and `features` map images (N, H, W, C) to numpy arrays."""
  model: nn.Module
  params: dict

  def _apply(self, images, chunk: int = 4096):
    """(logits, features) as numpy, in chunks (MNIST's 60,000 at once would not fit)."""
    outs = [_apply_jit(self.model, self.params, jnp.asarray(images[i:i + chunk], jnp.float32))
            for i in range(0, len(images), chunk)]
    return tuple(np.concatenate([np.asarray(o[j]) for o in outs]) for j in (0, 1))

  def probabilities(self, images) -> np.ndarray:
    return np.asarray(jax.nn.softmax(self._apply(images)[0]), np.float64)

  def features(self, images) -> np.ndarray:
    """The penultimate features: ReLU of the dense layer before the classifier head."""
    return np.asarray(self._apply(images)[1], np.float64)

  def predict(self, images) -> np.ndarray:
    return np.argmax(self._apply(images)[0], axis=-1)

  def accuracy(self, images, labels) -> float:
    return float(np.mean(self.predict(images) == np.asarray(labels)))


@functools.partial(jax.jit, static_argnums=0)
def _apply_jit(model, params, images):
  """(logits, ReLU(dense output)): the head's input are the penultimate features."""
  logits, inter = model.apply(
      {"params": params}, images, capture_intermediates=lambda m, _: m.name == "dense")
  return logits, nn.relu(inter["intermediates"]["dense"]["__call__"][0])


def classifier_program(images, labels, config=None,
                       num_classes: int = 10) -> population.Program:
  """The digit classifier's training as a population Program (state {"params",
  "opt_state"}; Adam on the mean cross-entropy of the core's (seed, step) batches)."""
  config = classifier_config() if config is None else config
  model = CNN(num_outputs=num_classes, channels=tuple(config.channels),
              dense_width=config.dense_width)
  train = data.ArraySplit(np.asarray(images, np.float32), np.asarray(labels, np.int32))
  tx = optax.adam(config.learning_rate)

  def init(key):
    params = model.init(key, jnp.zeros((1,) + train.inputs.shape[1:], jnp.float32))["params"]
    return {"params": params, "opt_state": tx.init(params)}

  def loss_of(p, batch):
    logits = model.apply({"params": p}, batch["inputs"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]).mean()

  def train_step(state, batch, rng, hparams):
    del rng, hparams
    loss, grads = jax.value_and_grad(loss_of)(state["params"], batch)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    return ({"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state},
            {"train_loss": loss})

  return population.Program(init=init, train_step=train_step, train=train,
                            batch_size=config.batch_size, family="cnn")


def train_classifier(images, labels, config=None, num_classes: int = 10) -> DigitClassifier:
  """Trains the lecture-9 CNN on (images, labels) with Adam; deterministic in config.seed.

  `config.steps` steps of `classifier_program` on the population engine (one member of
  seed `config.seed`; the core's (seed, step) epoch order of the examples): a few seconds
  on 2 CPU cores for the 1,497 digits.
  """
  config = classifier_config() if config is None else config
  program = classifier_program(images, labels, config, num_classes)
  result = population.run(program, [population.Member(int(config.seed))],
                          num_steps=config.steps, progress=False, desc="digit classifier")
  model = CNN(num_outputs=num_classes, channels=tuple(config.channels),
              dense_width=config.dense_width)
  return DigitClassifier(model, result.params(0))



def inception_score(probs) -> float:
  """exp(mean_i KL(p(y|x_i) || p̂(y))), p̂(y) = mean_i p(y|x_i); probs (N, K) rows sum to 1."""
  p = np.asarray(probs, np.float64)
  marginal = p.mean(axis=0)
  # 0 log 0 = 0: a class with p(y|x) = 0 contributes nothing.
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)
  return float(np.exp(terms.sum(axis=1).mean()))


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """(mean (D,), covariance (D, D)) of features (N, D), float64, unbiased (N - 1)."""
  f = np.asarray(features, np.float64)
  return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh((c + c.T) / 2)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """|μ1 - μ2|² + tr Σ1 + tr Σ2 - 2 tr (Σ1 Σ2)^½, the squared Wasserstein-2 distance
  between N(μ1, Σ1) and N(μ2, Σ2) (Dowson & Landau, 1982).

  tr (Σ1 Σ2)^½ = tr (Σ1^½ Σ2 Σ1^½)^½: the eigenvalues of Σ1 Σ2 equal those of the
  symmetric PSD matrix Σ1^½ Σ2 Σ1^½, so it is the sum of their square roots (no
  non-symmetric matrix square root, no complex round-off).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
  s1 = _sqrtm_psd(cov1)
  cross = np.linalg.eigvalsh((s1 @ cov2 @ s1 + (s1 @ cov2 @ s1).T) / 2)
  tr_sqrt = np.sum(np.sqrt(np.clip(cross, 0.0, None)))
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def feature_frechet_distance(features_a, features_b) -> float:
  """Fréchet distance between Gaussians fitted to two feature sets (N_a, D), (N_b, D)."""
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def class_histogram(predicted, num_classes: int = 10) -> np.ndarray:
  """Share of the samples in each class (K,), from predicted integer classes (N,)."""
  counts = np.bincount(np.asarray(predicted, np.int64).ravel(), minlength=num_classes)
  return counts[:num_classes] / max(len(np.ravel(predicted)), 1)


def dropped_classes(shares, min_share: float) -> list[int]:
  """Classes (modes) holding less than `min_share` of the samples."""
  return [int(k) for k in np.flatnonzero(np.asarray(shares) < min_share)]
