from spot_extender.cluster.distrust import Distrust


def test_a_group_is_distrusted_for_its_time_an_extension_counts_and_nothing_is_left_behind():
    now = [0.0]
    distrust = Distrust(lambda: now[0], seconds=10)
    distrust.add("a")
    now[0] = 5
    distrust.add("a")  # extended to 15
    now[0] = 7
    distrust.add("b")  # until 17
    now[0] = 12
    assert "a" in distrust and "b" in distrust
    now[0] = 15
    assert "a" not in distrust and "b" in distrust
    now[0] = 17
    assert len(distrust) == 0 and not distrust._ends
