"""Scale-out over many devices: a local TVM RPC farm (tracker + servers) for tests and demos,
a scheduler that spreads measurements over every free device under a tracker key, and
emulated devices of another architecture (qemu-user) for when there is no device at hand."""
from hwnas.farm.emulated_arch import EMULATED_ARCHES, EmulatedArch, get_arch
from hwnas.farm.emulated_root import EmulatedRoot, default_cache_dir, ensure_root
from hwnas.farm.emulator import EmulatedDevice, start_emulated_device
from hwnas.farm.local import Farm, FarmServer, free_port, start_farm
from hwnas.farm.tracker import free_devices, registered_devices, tracker_summary

__all__ = ["Farm", "FarmServer", "start_farm", "free_port", "tracker_summary", "free_devices",
           "registered_devices", "DeviceFarm", "DeviceMeasurement", "EMULATED_ARCHES",
           "EmulatedArch", "get_arch", "EmulatedRoot", "default_cache_dir", "ensure_root",
           "EmulatedDevice", "start_emulated_device"]


def __getattr__(name: str):
    # the scheduler imports TVM's RPC runtime; load it only when asked for
    if name in ("DeviceFarm", "DeviceMeasurement"):
        from hwnas.farm import scheduler

        return getattr(scheduler, name)
    raise AttributeError(f"module 'hwnas.farm' has no attribute '{name}'")
