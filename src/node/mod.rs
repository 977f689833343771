//! The ROS 2 node. The only code that names a ROS client library, inside
//! one adapter folder per client library.
