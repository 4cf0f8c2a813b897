"""The encoder-decoder Transformer (lectures 12-13; Vaswani et al., NeurIPS 2017).

`Seq2SeqTransformer` is Flax Linen and pure. Token id `pad_id` is padding: the encoder's
self-attention and the decoder's cross-attention never attend to padded source tokens
(`padding_mask`), and the decoder's self-attention is causal (`causal_mask`); padded
target positions come after every real one, so causality alone keeps real queries off
them. Three entry points:

* `__call__(src, tgt_in, train=)` -> logits [batch, tgt_len, vocab] (teacher forcing).
* `encode(src, train=)` -> encoder output [batch, src_len, width].
* `decode(tgt_in, encoded, src, positions=None, train=, decode=)` -> logits. With
  decode=True it runs incrementally on a key/value cache (a 'cache' collection, see
  `attention.CausalSelfAttention`); `positions` [len] are then the absolute positions of
  `tgt_in` (e.g. [t] for the t-th decoding step). `leeml.decoding` builds on it.
  Applied with mutable=["intermediates"], it also returns each decoder layer's
  cross-attention weights (`cross_attention_<i>`: [batch, heads, len, src_len]).

Config switches: pre-/post-LN (`norm_position`), positional encoding (`positions`:
sinusoidal | learned | none), `residual`, layers/heads/width/mlp_dim, `dropout`, tied
embeddings (one table for source, target and the output layer, as in Vaswani et al.
section 3.4, with embeddings scaled by sqrt(width)). Label smoothing is in
`sequence_cross_entropy` (Szegedy et al. 2016; eps = 0.1 in Vaswani et al. 5.4).
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from leeml.models import attention, layers

Array = jax.Array
POSITIONS = ("sinusoidal", "learned", "none")


class Seq2SeqTransformer(nn.Module):
  """Encoder-decoder Transformer over one shared vocabulary.

  Attributes:
    vocab_size: number of token ids (source and target share them).
    num_layers: encoder and decoder blocks each (unless num_decoder_layers is set).
    num_heads: attention heads.
    width: model width d_model.
    mlp_dim: hidden width of each block's MLP.
    dropout: dropout rate on branch outputs and embeddings (train=True only).
    norm_position: "pre" or "post" LayerNorm.
    positions: "sinusoidal", "learned" or "none".
    residual: residual connections on/off.
    tie_embeddings: share the source/target embedding and the output projection.
    max_len: longest source or target sequence (positions table size).
    pad_id: the padding token id.
    num_decoder_layers: decoder depth if different from num_layers.
  """
  vocab_size: int
  num_layers: int = 2
  num_heads: int = 4
  width: int = 64
  mlp_dim: int = 128
  dropout: float = 0.0
  norm_position: str = "pre"
  positions: str = "sinusoidal"
  residual: bool = True
  tie_embeddings: bool = True
  max_len: int = 64
  pad_id: int = 0
  num_decoder_layers: Optional[int] = None

  def setup(self):
    if self.positions not in POSITIONS:
      raise ValueError(f"positions={self.positions!r} is not one of: {', '.join(POSITIONS)}")
    init = nn.initializers.normal(self.width ** -0.5)
    self.src_embed = nn.Embed(self.vocab_size, self.width, embedding_init=init)
    if not self.tie_embeddings:
      self.tgt_embed = nn.Embed(self.vocab_size, self.width, embedding_init=init)
      self.output = nn.Dense(self.vocab_size)
    if self.positions == "learned":
      self.src_pos = self.param("src_positions", nn.initializers.normal(0.02),
                                (self.max_len, self.width))
      self.tgt_pos = self.param("tgt_positions", nn.initializers.normal(0.02),
                                (self.max_len, self.width))
    self.encoder = attention.Encoder(self.num_layers, self.num_heads, self.mlp_dim,
                                     self.dropout, self.norm_position,
                                     residual=self.residual)
    self.blocks = [attention.DecoderBlock(self.num_heads, self.mlp_dim, self.dropout,
                                          self.norm_position, residual=self.residual)
                   for _ in range(self.num_decoder_layers or self.num_layers)]
    if self.norm_position == "pre":
      self.decoder_norm = layers.LayerNorm()
    self.embed_dropout = nn.Dropout(self.dropout)

  def _embed(self, tokens: Array, table: nn.Embed, positions: Array, learned, train: bool):
    x = table(tokens) * jnp.sqrt(self.width).astype(jnp.float32)
    if self.positions == "sinusoidal":
      x = x + attention.sinusoidal_positions(self.max_len, self.width)[positions]
    elif self.positions == "learned":
      x = x + learned[positions]
    return self.embed_dropout(x, deterministic=not train)

  def source_mask(self, src: Array) -> Array:
    """[batch, 1, 1, src_len]: True at real (non-pad) source tokens."""
    return attention.padding_mask(src != self.pad_id)

  def encode(self, src: Array, *, train: bool = False) -> Array:
    """src [batch, src_len] ids -> [batch, src_len, width]."""
    x = self._embed(src, self.src_embed, jnp.arange(src.shape[1]),
                    getattr(self, "src_pos", None), train)
    return self.encoder(x, self.source_mask(src), train=train)

  def decode(self, tgt_in: Array, encoded: Array, src: Array,
             positions: Optional[Array] = None, *, train: bool = False,
             decode: bool = False) -> Array:
    """tgt_in [batch, len] (BOS-shifted targets) -> logits [batch, len, vocab].

    `src` supplies the source padding mask; `positions` default to 0..len-1.
    """
    if positions is None:
      positions = jnp.arange(tgt_in.shape[1])
    table = self.src_embed if self.tie_embeddings else self.tgt_embed
    x = self._embed(tgt_in, table, positions, getattr(self, "tgt_pos", None), train)
    context_mask = self.source_mask(src)
    for i, block in enumerate(self.blocks):
      x, (_, cross) = block(x, encoded, context_mask, train=train, decode=decode,
                            return_weights=True)
      # Cross-attention maps [batch, heads, len, src_len] for plots: kept only when
      # applied with mutable=["intermediates"] (free otherwise).
      self.sow("intermediates", f"cross_attention_{i}", cross)
    if self.norm_position == "pre":
      x = self.decoder_norm(x)
    return table.attend(x) if self.tie_embeddings else self.output(x)

  def __call__(self, src: Array, tgt_in: Array, *, train: bool = False) -> Array:
    """Teacher forcing: logits [batch, tgt_len, vocab] for next-token prediction."""
    return self.decode(tgt_in, self.encode(src, train=train), src, train=train)


def shift_right(targets: Array, bos_id: int) -> Array:
  """Decoder inputs: BOS followed by targets[:, :-1]."""
  bos = jnp.full_like(targets[:, :1], bos_id)
  return jnp.concatenate([bos, targets[:, :-1]], axis=1)


def sequence_cross_entropy(logits: Array, targets: Array, pad_id: int = 0,
                           label_smoothing: float = 0.0) -> tuple[Array, Array]:
  """Per-token cross-entropy summed over each sequence's real (non-pad) targets.

  With smoothing eps the target distribution is (1 - eps) one-hot + eps / vocab.

  Returns:
    (loss [batch] summed over real tokens, number of real tokens [batch]).
  """
  onehot = jax.nn.one_hot(targets, logits.shape[-1], dtype=jnp.float32)
  if label_smoothing:
    onehot = optax.smooth_labels(onehot, label_smoothing)
  per_token = optax.softmax_cross_entropy(logits, onehot)
  weights = (targets != pad_id).astype(per_token.dtype)
  return jnp.sum(per_token * weights, axis=-1), jnp.sum(weights, axis=-1)


def sequence_log_prob(model: Seq2SeqTransformer, params, src: Array, targets: Array,
                      bos_id: int, pad_id: int = 0) -> Array:
  """log p(targets | src) [batch] under teacher forcing, summed over non-pad targets."""
  logits = model.apply({"params": params}, src, shift_right(targets, bos_id))
  logp = jax.nn.log_softmax(logits.astype(jnp.float32))
  tok = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(targets != pad_id, tok, 0.0), axis=-1)
