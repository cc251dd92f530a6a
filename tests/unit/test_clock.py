from vm_node.clock import Clocks


def test_a_local_event_steps_lamport_and_own_vector_entry_by_one() -> None:
    clocks = Clocks.zero(me=1, vms=3).local_event().local_event()
    assert clocks.lamport == 2
    assert clocks.vector == (0, 2, 0)


def test_receive_takes_the_max_of_both_lamport_clocks_plus_one() -> None:
    local = Clocks(me=0, lamport=5, vector=(5, 0, 0))
    assert local.receive(9, {"0": 0, "1": 9, "2": 0}).lamport == 10
    assert local.receive(2, {"0": 0, "1": 2, "2": 0}).lamport == 6


def test_receive_merges_vectors_elementwise_then_steps_own_entry() -> None:
    local = Clocks(me=0, lamport=4, vector=(3, 1, 5))
    merged = local.receive(7, {"0": 1, "1": 6, "2": 2})
    assert merged.vector == (4, 6, 5)


def test_receive_accepts_a_partial_vector_as_zeros_elsewhere() -> None:
    assert Clocks(me=2, lamport=0, vector=(0, 0, 0)).receive(3, {"1": 3}).vector == (0, 3, 1)


def test_vc_renders_ids_as_decimal_string_keys() -> None:
    assert Clocks(me=0, lamport=1, vector=(1, 0)).vc() == {"0": 1, "1": 0}
