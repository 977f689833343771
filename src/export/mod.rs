//! MCAP / rosbag2 export and import over the engine's public API.
