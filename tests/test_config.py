"""Config validation: each bad config gives one ConfigError line naming the field."""

import subprocess

import pytest

from conftest import REPO, binary_env, tiny_config, train_cmd
from leeml import config as config_lib

CASES = [
    # (description, mutation of the config dict, fragment the message must contain)
    ("unknown top-level key", lambda c: c.update(num_train_stesp=5),
     "config.num_train_stesp is not a known top-level key; did you mean 'num_train_steps'?"),
    ("unknown optimizer field", lambda c: c["optimizer"].update(lr=0.1),
     "config.optimizer.lr is not a known optimizer field"),
    ("unknown model field", lambda c: c["model"].update(widht=8),
     "config.model.widht is not a known field of model 'mlp'; did you mean 'width'?"),
    ("field of another model", lambda c: c["model"].update(channels=(8,)),
     "config.model.channels is not a known field of model 'mlp'"),
    ("wrong type (str for int)", lambda c: c.update(batch_size="32"),
     "config.batch_size must be int (got '32' of type str)"),
    ("wrong type (float for int)", lambda c: c["model"].update(width=8.5),
     "config.model.width must be int (got 8.5 of type float)"),
    ("wrong type (int for bool)", lambda c: c["model"].update(residual=1),
     "config.model.residual must be bool"),
    ("wrong tuple element type", lambda c: c["dataset"].update(input_shape=(16.0,)),
     "config.dataset.input_shape must be a tuple of int"),
    ("unknown dataset field", lambda c: c["dataset"].update(num_trian=5),
     "config.dataset.num_trian is not a known field of dataset 'gaussian_blobs'; did you mean"),
    ("zero learning rate", lambda c: c["optimizer"].update(learning_rate=0.0),
     "config.optimizer.learning_rate must be > 0 (got 0.0)"),
    ("negative learning rate", lambda c: c["optimizer"].update(learning_rate=-0.1),
     "config.optimizer.learning_rate must be > 0 (got -0.1)"),
    ("zero steps", lambda c: c.update(num_train_steps=0),
     "config.num_train_steps must be > 0 (got 0)"),
    ("negative steps", lambda c: c.update(num_train_steps=-3),
     "config.num_train_steps must be > 0 (got -3)"),
    ("zero batch", lambda c: c.update(batch_size=0), "config.batch_size must be > 0"),
    ("unknown model", lambda c: c["model"].update(name="resnet"),
     "config.model.name='resnet' is not one of: cnn, locally_connected, mlp, residual_mlp, "
     "st_cnn, vit"),
    ("unknown optimizer", lambda c: c["optimizer"].update(name="adamm"),
     "config.optimizer.name='adamm' is not one of: adagrad, adam, adamw,"),
    ("unknown loss", lambda c: c["loss"].update(name="cross_entropy"),
     "config.loss.name='cross_entropy' is not one of: mse, sigmoid_cross_entropy,"),
    ("unknown schedule", lambda c: c["schedule"].update(name="cosin"),
     "config.schedule.name='cosin' is not one of: constant, cosine,"),
    ("unknown dataset", lambda c: c["dataset"].update(name="mnist2"),
     "config.dataset.name='mnist2' is not one of:"),
    ("unknown activation", lambda c: c["model"].update(activation="rleu"),
     "config.model.activation='rleu' is not one of:"),
    ("unknown norm", lambda c: c["model"].update(norm="groupnorm"),
     "config.model.norm='groupnorm' is not one of: batch, group, instance, layer, none"),
    ("label smoothing out of range", lambda c: c["loss"].update(label_smoothing=1.0),
     "config.loss.label_smoothing must be in [0, 1) (got 1.0)"),
    ("warmup longer than training", lambda c: c["schedule"].update(warmup_steps=10**6),
     "config.schedule.warmup_steps=1000000 exceeds config.num_train_steps=60"),
    ("warmup on a schedule without one",
     lambda c: c["schedule"].update(name="step", warmup_steps=5), "config.schedule."),
]


def _mutated(mutate):
  config = tiny_config().to_dict()
  mutate(config)
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(config)


@pytest.mark.parametrize("desc,mutate,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_config_gives_one_clear_line(desc, mutate, fragment):
  with pytest.raises(config_lib.ConfigError) as err:
    config_lib.validate(_mutated(mutate), device_count=1, process_count=1)
  message = str(err.value)
  assert "\n" not in message, desc
  assert fragment in message, message


@pytest.mark.parametrize("section,key", [("", "eval_on_train"), ("", "log_every_steps"),
                                         ("optimizer.", "momentum"), ("schedule.", "name")])
def test_a_missing_key_is_one_line_naming_it(section, key):
  # Before: validation skipped missing keys, and a config without eval_on_train trained
  # until its first evaluation read the key.
  config = tiny_config()
  del (config[section[:-1]] if section else config)[key]
  with pytest.raises(config_lib.ConfigError,
                     match=rf"^config\.{section}{key} is missing \(a required .*\)$"):
    config_lib.validate(config, device_count=1, process_count=1)


def test_batch_not_divisible_by_device_count():
  config = tiny_config(batch_size=36)
  config_lib.validate(config, device_count=4, process_count=1)  # 36 = 4 * 9: fine
  with pytest.raises(config_lib.ConfigError,
                     match=r"^config.batch_size=36 is not divisible by the device count 8$"):
    config_lib.validate(config, device_count=8, process_count=1)
  config = tiny_config(eval_batch_size=100)
  with pytest.raises(config_lib.ConfigError, match=r"config.eval_batch_size=100 .* count 8"):
    config_lib.validate(config, device_count=8, process_count=1)


def test_good_configs_pass():
  from configs import cnn, default  # pylint: disable=g-import-not-at-top
  for get in (default.get_config, cnn.get_config):
    for preset in ("smoke", "cpu", "full"):
      config_lib.validate(get(preset), device_count=8, process_count=2)


def test_binary_prints_one_line_and_exits_nonzero(tmp_path):
  proc = subprocess.run(
      train_cmd(str(tmp_path / "w"), "--config.optimizer.learning_rate=-1.0"),
      env=binary_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  last = proc.stderr.strip().splitlines()[-1]
  assert last == "leeml: invalid config: config.optimizer.learning_rate must be > 0 (got -1.0)"
  assert not (tmp_path / "w" / "checkpoints").exists()  # failed before doing any work


def test_zero_means_all_only_where_the_dataset_says_so():
  config = tiny_config()
  config.dataset = dict(name="mnist", data_dir="", num_train=0, num_test=0, download=False,
                        stream=True)
  config_lib.validate(config, device_count=1, process_count=1)  # 0 = all examples
  config = tiny_config()
  config.dataset.num_train = 0  # gaussian_blobs: 0 examples is impossible
  with pytest.raises(config_lib.ConfigError, match=r"config.dataset.num_train must be > 0"):
    config_lib.validate(config, device_count=1, process_count=1)
