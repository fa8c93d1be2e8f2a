"""How plugin modules are sized: every listed built-in ``like``, the named kinds, channel rules, and their errors.

The like test iterates over the whole list the installed ``parse_model`` offers (``supported_likes()``) and compares a
probe registered like each built-in with the built-in itself: the built-in's name in ``ultralytics.nn.tasks`` is
pointed, for one build, at a recording subclass, so the reference is whatever the installed ``parse_model`` does with
that class, on 8.3.0 as on 8.4.x.
"""

from __future__ import annotations

import copy

import pytest
from torch import nn
from ultralytics.nn import tasks

from yolo_fasternet import ModelYamlError, RegistrationError, register_module
from yolo_fasternet.integration.channel_rules import KINDS, LayerInputs
from yolo_fasternet.integration.registration import register_modules, supported_likes
from yolo_fasternet.integration.registry import PluginModule

pytestmark = pytest.mark.registration
# width 0.5 and max_channels 64 make width scaling and the max_channels cap visible; depth 1.0 keeps n = 2, so
# repeats (passed as an argument, or n copies in a Sequential) are visible too
SCALES = {"x": [1.0, 0.5, 64]}
# ints every built-in branch can index, scale and test; 4 long (SPPF's legacy rule acts on <= 3)
PROBE_ARGS = [16, 8, 2, 1]


class _Recorder(nn.Module):
    """Keeps the arguments ``parse_model`` constructed it with."""

    def __init__(self, *args, **kwargs):
        nn.Module.__init__(self)
        self.recorded = (copy.deepcopy(args), copy.deepcopy(kwargs))


@register_module(channels=lambda layer: (layer.args[0], [layer.c1, layer.args[0]]))
class KindsWidthSource(_Recorder):
    """Outputs the width its YAML argument names (unscaled), whatever its input."""


@register_module(like="attention")
class KindsWidthReveal(_Recorder):
    """Receives the previous row's output width as its first argument."""


def _build(row: list, widths=(24, 40), scale_set=SCALES) -> list:
    """Rows 0 and 1 output ``widths``, then ``row``, then a row revealing ``row``'s output width (see last element)."""
    head = [[-1, 1, "KindsWidthReveal", []]]
    backbone = [[-1, 1, "KindsWidthSource", [widths[0]]], [-1, 1, "KindsWidthSource", [widths[1]]], row]
    d = {"nc": 3, "scales": scale_set, "scale": next(iter(scale_set)), "backbone": backbone, "head": head}
    return list(tasks.parse_model(copy.deepcopy(d), ch=3, verbose=False)[0])


def _treatment(layers: list) -> tuple:
    """What parse_model did with row 2: how many modules, the arguments of each, and the output width it recorded."""
    layer = layers[2]
    built = list(layer) if isinstance(layer, nn.Sequential) else [layer]
    return len(built), [m.recorded for m in built], layers[3].recorded[0][0]


def _probe_class(like: str) -> type:
    return type(f"LikeProbe{like}", (_Recorder,), {"__module__": __name__})


def test_every_listed_like_builds_a_probe_exactly_as_the_builtin(monkeypatch):
    likes = sorted(supported_likes())
    assert len(likes) >= 30  # 8.3.0 lists 47, 8.4.190 lists 58; a short list means the source was not read
    probes = {like: _probe_class(like) for like in likes}
    register_modules([PluginModule(cls, like=like, origin="tests") for like, cls in probes.items()])
    compared = []
    for like in likes:
        reference = None
        for f in (-1, [-1, -2]):  # single-input built-ins index ch[f]; multi-input ones iterate f
            with monkeypatch.context() as patch:  # the built-in's name -> a recording subclass, for one build
                builtin = getattr(tasks, like)
                patch.setattr(tasks, like, type(like, (_Recorder, builtin), {"__module__": builtin.__module__}))
                try:
                    reference = f, _treatment(_build([f, 2, like, list(PROBE_ARGS)]))
                    break
                except (TypeError, IndexError, KeyError, ValueError, AttributeError):
                    continue
        assert reference is not None, f"no probe row builds for the built-in {like}"
        f, expected = reference
        assert _treatment(_build([f, 2, probes[like].__name__, list(PROBE_ARGS)])) == expected, like
        compared.append(like)
    assert compared == likes


def test_likes_that_parse_model_tests_only_by_identity_are_listed_and_work():
    likes = supported_likes()
    assert {"Concat", "AIFI", "ResNetLayer", "CBLinear", "CBFuse", "Detect"} <= likes
    layers = _build([[-1, -2], 1, "LikeProbeConcat", [1]])  # registered by the test above or here
    assert layers[3].recorded[0][0] == 24 + 40


@pytest.fixture(scope="module", autouse=True)
def _probe_concat():
    register_modules([PluginModule(_probe_class("Concat"), like="Concat", origin="tests")])


# --- named kinds -----------------------------------------------------------------------------------------------


@register_module(like="attention")
class KindsAttention(_Recorder):
    pass


@register_module(like="parameter_free")
class KindsParameterFree(_Recorder):
    pass


@register_module(like="concat")
class KindsConcat(_Recorder):
    pass


@register_module(like="fuse")
class KindsFuse(_Recorder):
    pass


@pytest.mark.parametrize(
    "row, args, c2",
    [
        ([-1, 1, "KindsAttention", [7]], [40, 7], 40),
        ([-2, 1, "KindsAttention", [7]], [24, 7], 24),  # from an earlier row: its width, not the previous row's
        ([[-2, -1], 1, "KindsAttention", [7]], [[24, 40], 7], 24),  # a list: all widths passed, the first kept
        ([-1, 1, "KindsParameterFree", [1e-4]], [1e-4], 40),
        ([-2, 1, "KindsParameterFree", []], [], 24),
        ([[-2, -1], 1, "KindsParameterFree", []], [], 24),
        ([[-1, -2], 1, "KindsConcat", [1]], [[40, 24], 1], 64),
        ([-2, 1, "KindsConcat", []], [[24]], 24),
        ([[-1, 0], 1, "KindsFuse", []], [[40, 40]], 40),
        ([-2, 1, "KindsFuse", [0.5]], [[24], 0.5], 24),
    ],
)
def test_named_kinds_pass_inputs_and_keep_widths_for_any_from(row, args, c2):
    widths = (40, 40) if row[0] == [-1, 0] else (24, 40)
    n, recorded, out = _treatment(_build(row, widths))
    assert (n, recorded, out) == (1, [(tuple(args), {})], c2)


@pytest.mark.parametrize("scale", "nsmlx")
def test_named_kinds_follow_the_inputs_width_at_every_scale(scale):
    """Kinds do not scale by themselves: after a Conv row, the output is that row's scaled width, n copies chained."""
    scales = {"n": [0.33, 0.25, 1024], "s": [0.33, 0.5, 1024], "m": [0.67, 0.75, 768]}
    scales.update(l=[1.0, 1.0, 512], x=[1.0, 1.25, 512])
    d = {"nc": 3, "scales": scales, "scale": scale, "head": [[-1, 1, "KindsWidthReveal", []]]}
    d["backbone"] = [[-1, 1, "Conv", [768, 3, 2]], [-1, 3, "KindsAttention", [4]], [[-1, 0], 1, "KindsFuse", []]]
    layers = tasks.parse_model(d, ch=3, verbose=False)[0]
    conv_width = layers[0].conv.out_channels
    assert conv_width == min(768, scales[scale][2]) * scales[scale][1]
    copies = list(layers[1]) if isinstance(layers[1], nn.Sequential) else [layers[1]]
    assert [m.recorded[0] for m in copies] == [(conv_width, 4)] * len(copies)
    assert len(copies) == max(round(3 * scales[scale][0]), 1)  # n copies, depth-scaled as Ultralytics does
    assert layers[3].recorded[0] == (conv_width,)


# --- channel rules ---------------------------------------------------------------------------------------------


class KindsRuleBlock(_Recorder):
    """Output width: the YAML's c2 scaled like Conv's, plus the input width (a rule no built-in has)."""

    @classmethod
    def yolo_channels(cls, layer: LayerInputs):
        c2 = layer.scaled(layer.args[0]) + sum(layer.widths)
        return c2, [layer.c1, c2, *layer.args[1:]]


register_module(KindsRuleBlock)


@pytest.mark.parametrize("scale_set", [{"n": [0.33, 0.25, 1024]}, {"x": [1.0, 1.25, 64]}, {"y": [1.0, 1.0, 100]}])
def test_a_classmethod_rule_sees_width_and_max_channels(scale_set):
    width, max_channels = next(iter(scale_set.values()))[1:]
    expected = int(-(-min(256, max_channels) * width // 8) * 8) + 40  # Ultralytics' rounding up to a multiple of 8
    n, recorded, out = _treatment(_build([-1, 1, "KindsRuleBlock", [256, 3]], scale_set=scale_set))
    assert recorded == [((40, expected, 3), {})] and out == expected


def test_a_callable_rule_given_to_register_module_gets_the_list_of_inputs():
    seen = []

    def rule(layer):
        seen.append(layer)
        return max(layer.widths), [layer.widths, layer.args[0]]

    register_module(_probe_class("CallableRule"), channels=rule)
    n, recorded, out = _treatment(_build([[-1, -2], 1, "LikeProbeCallableRule", ["nc"]]))
    assert out == 40 and recorded == [(([40, 24], 3), {})]  # "nc" resolved by parse_model before the rule
    assert seen[-1].index == 2 and seen[-1].c1 == [40, 24] and seen[-1].width == 0.5 and seen[-1].max_channels == 64


# --- bad declarations: one line naming the module and the layer -------------------------------------------------


def _one_line_error(row, error=ModelYamlError) -> str:
    with pytest.raises(error) as e:
        _build(row)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_unknown_kind_is_one_line_naming_the_module_and_the_kinds():
    with pytest.raises(RegistrationError) as e:
        register_module(_probe_class("Misspelt"), like="atention")
    message = str(e.value)
    assert "\n" not in message and "LikeProbeMisspelt" in message and "'atention'" in message
    assert all(kind in message for kind in KINDS) and "Concat" in message
    assert "LikeProbeMisspelt" not in vars(tasks)


def test_a_rule_that_raises_names_the_layer_module_and_rule():
    def rule(layer):
        return layer.args[5], layer.args

    register_module(_probe_class("RaisingRule"), channels=rule)
    message = _one_line_error([-1, 1, "LikeProbeRaisingRule", [1, 2]])
    assert message.startswith("model YAML layer 2 (LikeProbeRaisingRule, channel rule ")
    assert "rule" in message and "IndexError" in message and "[1, 2]" in message


@pytest.mark.parametrize("result", [(32.0, []), ("64", []), (True, []), (0, []), (32, None), 32, (32, [], 1)])
def test_a_rule_returning_nonsense_names_the_layer_module_and_what_is_expected(result):
    name = f"Nonsense{abs(hash(repr(result)))}"
    register_module(_probe_class(name), channels=lambda layer: result)
    message = _one_line_error([-1, 1, f"LikeProbe{name}", []])
    assert message.startswith(f"model YAML layer 2 (LikeProbe{name}, channel rule ")
    assert "must return (c2, args): c2 a positive int" in message


def test_a_fusion_of_different_widths_names_the_layer_the_module_and_the_widths():
    message = _one_line_error([[-1, -2], 1, "KindsFuse", []])
    assert message.startswith("model YAML layer 2 (KindsFuse, kind 'fuse')")
    assert "[40, 24]" in message and "different widths" in message


def test_a_from_that_names_no_layer_is_one_line():
    message = _one_line_error([[-1, 7], 1, "KindsConcat", []])
    assert message.startswith("model YAML layer 2 (KindsConcat, kind 'concat'): 'from' [-1, 7]")


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"like": "attention", "channels": lambda layer: (1, [])}, "not both"),
        ({"channels": 42}, "is not callable"),
        ({}, "no like, kind or channel rule given"),
    ],
)
def test_bad_registrations_are_one_line_and_register_nothing(kwargs, reason):
    cls = _probe_class(f"BadRegistration{len(kwargs)}{reason.split()[0]}")
    with pytest.raises(RegistrationError, match=reason) as e:
        register_module(cls, **kwargs)
    assert "\n" not in str(e.value) and cls.__name__ not in vars(tasks)


def test_a_class_declaring_both_a_like_and_a_rule_is_refused():
    cls = _probe_class("BothDeclared")
    cls.yolo_like, cls.yolo_channels = "attention", classmethod(lambda c, layer: (1, []))
    with pytest.raises(RegistrationError, match="declares both yolo_like and yolo_channels"):
        register_module(cls)
