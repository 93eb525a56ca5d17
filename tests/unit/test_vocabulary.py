"""The shared vocabulary: classes and roles are plain strings (they key tables filled from
label values), and every provider convention it ships parses as a setting."""

from spot_extender.core import settings as settings_module
from spot_extender.core import vocabulary as v


def test_classes_and_roles_are_plain_strings_that_hash_as_their_values():
    for value in (*v.Capacity.CLASSES, v.Capacity.UNKNOWN, *v.Role.ROLES, *v.Placement.ALL):
        assert type(value) is str
    assert {"spot": 1}[v.Capacity.SPOT] == 1 and {"floor": 1}[v.Role.FLOOR] == 1
    assert v.Placement.ALL == ("auto", "spot", "on-demand")


def test_the_provider_defaults_parse_as_the_settings_they_are():
    s = settings_module.Settings()
    assert len(s.capacity_rules) == len(v.DEFAULT_CAPACITY_LABELS)
    assert {cls for _, _, cls in s.capacity_rules} == set(v.Capacity.CLASSES)
    assert set(s.drain_notices) <= set(s.going_away_taints)
    assert len(s.spot_toleration_rules) == len(v.DEFAULT_SPOT_TOLERATIONS)
    assert s.spread_topology_keys == (v.ZONE_LABEL, v.INSTANCE_TYPE_LABEL)
