from vmgui.model import VmState, VmStatsSample, rates_between


def test_rates_between_derives_cpu_percent_and_byte_rates() -> None:
    a = VmStatsSample("u", 10.0, cpu_time_ns=0, vcpus=2, disk_read_bytes=0, net_rx_bytes=100)
    b = VmStatsSample("u", 12.0, cpu_time_ns=2_000_000_000, vcpus=2, disk_read_bytes=4096,
                      net_rx_bytes=50)
    r = rates_between(a, b)
    assert r.cpu_percent == 50.0
    assert r.disk_read_bps == 2048.0
    assert r.net_rx_bps == 0.0  # counter went backwards: the VM restarted


def test_state_words_match_virsh() -> None:
    assert VmState.SHUTOFF.value == "shut off"
    assert VmState.RUNNING.is_active and not VmState.SHUTOFF.is_active
