"""Starts motedb_node with config/motedb.yaml.

ros2 launch motedb motedb.launch.py storage_path:=/data/motedb namespace:=robot1
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    config = os.path.join(get_package_share_directory('motedb'), 'config', 'motedb.yaml')
    return LaunchDescription([
        DeclareLaunchArgument(
            'storage_path', default_value='',
            description='Store directory; empty: $ROS_HOME/motedb'),
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of the motedb node'),
        Node(
            package='motedb',
            executable='motedb_node',
            name='motedb',
            namespace=LaunchConfiguration('namespace'),
            output='screen',
            parameters=[config, {'storage.path': LaunchConfiguration('storage_path')}],
        ),
    ])
