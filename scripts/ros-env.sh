# Source this after scripts/setup:  . scripts/ros-env.sh
# Gives a shell where python3 is the venv's (rclpy, motedb_interfaces),
# motedb_node and motedb are on PATH, and ROS discovery stays on localhost
# with a fixed domain id.
# shellcheck shell=bash

_motedb_here="${BASH_SOURCE[0]:-$0}"
MOTEDB_ROOT="$(cd "$(dirname "$_motedb_here")/.." && pwd)"
unset _motedb_here
export MOTEDB_ROOT
export MOTEDB_VENV="$MOTEDB_ROOT/.venv"
export MOTEDB_SHIM="$MOTEDB_ROOT/.shim"

export VIRTUAL_ENV="$MOTEDB_VENV"
case ":$PATH:" in
    *":$MOTEDB_ROOT/target/release:"*) ;;
    *) export PATH="$MOTEDB_VENV/bin:$MOTEDB_ROOT/target/release:$PATH" ;;
esac

export ROS_DISTRO=jazzy
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# The venv is an ament prefix; the shim supplies librmw_implementation.so.
export AMENT_PREFIX_PATH="$MOTEDB_VENV:$MOTEDB_SHIM"
export CMAKE_PREFIX_PATH="$MOTEDB_VENV"

# Needed at build time (r2r's build scripts load ROS libraries); binaries
# built with --features ros carry an RPATH and run without it.
_motedb_ld="$MOTEDB_VENV/lib"
for _d in "$MOTEDB_VENV"/lib/python3.*/site-packages/ros_*.libs; do
    [ -d "$_d" ] && _motedb_ld="$_motedb_ld:$_d"
done
case ":${LD_LIBRARY_PATH:-}:" in
    *":$MOTEDB_VENV/lib:"*) ;;
    *) export LD_LIBRARY_PATH="$_motedb_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
unset _motedb_ld _d

# Hard rule: discovery never leaves this machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
