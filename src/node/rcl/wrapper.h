/* The rcl API the recorder calls directly: bindgen input (build.rs). */
#include <rcl/rcl.h>
#include <rcl/graph.h>
#include <rmw/features.h>
#include <rcutils/error_handling.h>
#include <rosidl_runtime_c/message_type_support_struct.h>
#include <rcl/arguments.h>
#include <rcl_yaml_param_parser/parser.h>
