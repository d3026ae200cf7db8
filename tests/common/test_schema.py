"""The hand-written Example serialiser must equal tf.train.Example, eagerly and in tf.data."""

import numpy as np
import pytest
import tensorflow as tf

from common import schema


def _reference(image, label, key, source=b"mnist"):
    feature = {
        "image": tf.train.Feature(float_list=tf.train.FloatList(value=image.ravel())),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[key])),
    }
    if source is not None:
        feature["source"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[source]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _block(keys):
    rng = np.random.default_rng(0)
    images = rng.random((len(keys), 28, 28), dtype=np.float32)
    labels = (np.arange(len(keys)) * 7 % 10).astype(np.uint8)
    return images, labels


def test_encoded_examples_equal_tf_train_example_for_mixed_key_lengths():
    keys = [b"train-00001", b"train-99999", b"train-100000", b"test-00000", b""]
    images, labels = _block(keys)
    records = schema.encode_examples(images, labels, keys)
    for record, image, label, key in zip(records, images, labels, keys, strict=True):
        assert tf.train.Example.FromString(record) == _reference(image, label, key)


def test_encoded_examples_equal_tf_train_example_for_mixed_sources():
    keys = [b"train-00001", b"forms-0123456789abcdef0123", b"scans-0123456789abcdef0123"]
    sources = [b"mnist", b"forms", b"a-much-longer-folder-name"]
    images, labels = _block(keys)
    records = schema.encode_examples(images, labels, keys, sources)
    for record, image, label, key, source in zip(
        records, images, labels, keys, sources, strict=True
    ):
        assert tf.train.Example.FromString(record) == _reference(image, label, key, source)


def test_not_a_digit_records_carry_their_own_label_and_only_when_asked():
    images, _ = _block([b"forms-1"])
    label = np.array([schema.NOT_A_DIGIT], np.uint8)
    (record,) = schema.encode_examples(images, label, [b"forms-1"], [b"forms"], not_a_digit=True)
    parsed = schema.parse_examples(tf.constant([record]))
    assert parsed["label"].numpy().tolist() == [schema.NOT_A_DIGIT]
    with pytest.raises(ValueError, match="0-9"):
        schema.encode_examples(images, label, [b"forms-1"], [b"forms"])


def test_records_written_before_sources_existed_parse_as_mnist():
    images, labels = _block([b"test-00000"])
    old = _reference(images[0], labels[0], b"test-00000", source=None).SerializeToString()
    parsed = schema.parse_examples(tf.constant([old]))
    assert parsed["source"].numpy().tolist() == [b"mnist"]


def test_parse_examples_eagerly_and_inside_tf_data_agree():
    keys = [schema.make_key("test", i) for i in range(6)]
    images, labels = _block(keys)
    records = schema.encode_examples(images, labels, keys)

    eager = schema.parse_examples(tf.constant(records))
    graph = next(
        iter(tf.data.Dataset.from_tensor_slices(records).batch(6).map(schema.parse_examples))
    )
    for parsed in (eager, graph):
        assert parsed["image"].shape == (6, 28, 28, 1)
        np.testing.assert_array_equal(parsed["image"].numpy()[..., 0], images)
        np.testing.assert_array_equal(parsed["label"].numpy(), labels)
        assert [k.decode() for k in parsed["key"].numpy()] == [k.decode() for k in keys]
        assert parsed["source"].numpy().tolist() == [b"mnist"] * 6


def test_normalise_maps_uint8_to_unit_interval():
    pixels = np.array([0, 1, 128, 255], np.uint8)
    np.testing.assert_allclose(schema.normalise(pixels), pixels / 255.0, rtol=1e-7)
    assert schema.normalise(pixels).dtype == np.float32


def test_labels_outside_range_are_refused():
    images, _ = _block([b"a"])
    try:
        schema.encode_examples(images, np.array([10], np.uint8), [b"a"])
    except ValueError as error:
        assert "0-9" in str(error)
    else:
        raise AssertionError("label 10 was serialised")
