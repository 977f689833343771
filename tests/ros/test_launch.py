"""launch/motedb.launch.xml, checked without ros2 launch (not installable
from the registries): the XML is parsed, its substitutions are evaluated
the way launch_ros evaluates them, and the node is started with the command
line launch_ros produces for it:

    motedb_node --ros-args -r __node:=motedb [-r __ns:=<ns>]
        --params-file <share>/config/motedb.yaml --params-file <tmp.yaml>

(the last file holds the <param name= value=> entries, as launch_ros writes
them to a temporary parameter file)."""

import ast
import re
import xml.etree.ElementTree as ET

import yaml
from conftest import NodeProcess, REPO, call, node_binary
from motedb_interfaces.srv import ListTopics

LAUNCH_XML = REPO / 'launch' / 'motedb.launch.xml'
LAUNCH_PY = REPO / 'launch' / 'motedb.launch.py'
CONFIG = REPO / 'config' / 'motedb.yaml'


def substitute(text, args):
    def one(match):
        kind, _, value = match.group(1).partition(' ')
        if kind == 'var':
            return args[value]
        if kind == 'find-pkg-share':
            assert value == 'motedb'
            return str(REPO)  # source layout mirrors share/motedb
        raise AssertionError(f'unsupported substitution $({match.group(1)})')
    return re.sub(r'\$\(([^)]*)\)', one, text)


def launch_command(overrides, tmp_path):
    root = ET.parse(LAUNCH_XML).getroot()
    args = {a.get('name'): a.get('default') for a in root.findall('arg')}
    assert set(overrides) <= set(args), f'unknown launch args {set(overrides) - set(args)}'
    args.update(overrides)
    (node,) = root.findall('node')
    assert (node.get('pkg'), node.get('exec')) == ('motedb', 'motedb_node')
    argv = [node_binary(), '--ros-args', '-r', f"__node:={substitute(node.get('name'), args)}"]
    namespace = substitute(node.get('namespace') or '', args)
    if namespace:
        argv += ['-r', f"__ns:={'/' + namespace.lstrip('/')}"]
    inline = {}
    for param in node.findall('param'):
        if param.get('from'):
            argv += ['--params-file', substitute(param.get('from'), args)]
        else:
            inline[param.get('name')] = substitute(param.get('value'), args)
    if inline:
        tmp = tmp_path / 'launch_params.yaml'
        tmp.write_text(yaml.safe_dump({'/**': {'ros__parameters': inline}}))
        argv += ['--params-file', str(tmp)]
    return argv


def test_config_documents_the_node_defaults():
    params = yaml.safe_load(CONFIG.read_text())['/**']['ros__parameters']
    assert params['storage']['path'] == ''
    assert params['diagnostic_updater']['period'] == 1.0
    assert params['hardware_id'] == 'motedb'
    assert params['query'] == {'max_messages': 1000, 'max_bytes': 16 * 1024 * 1024}


def test_launch_python_declares_the_same_arguments():
    tree = ast.parse(LAUNCH_PY.read_text())
    declared = {
        node.args[0].value for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument'
    }
    xml_args = {a.get('name') for a in ET.parse(LAUNCH_XML).getroot().findall('arg')}
    assert declared == xml_args == {'storage_path', 'namespace'}


def test_node_started_as_launch_ros_would_answers(peer, tmp_path):
    argv = launch_command({'storage_path': str(tmp_path / 'store')}, tmp_path)
    assert argv[1:6] == ['--ros-args', '-r', '__node:=motedb', '--params-file', str(CONFIG)]
    node = NodeProcess(argv, tmp_path / 'node.log')
    try:
        response = call(peer, ListTopics, '/motedb/list_topics', ListTopics.Request(), node)
        assert list(response.topics) == []
    finally:
        assert node.stop() == 0, node.log()
    assert (tmp_path / 'store').is_dir()


def test_namespace_argument(peer, tmp_path):
    argv = launch_command(
        {'storage_path': str(tmp_path / 'store'), 'namespace': 'robot3'}, tmp_path)
    node = NodeProcess(argv, tmp_path / 'node.log')
    try:
        response = call(peer, ListTopics, '/robot3/motedb/list_topics',
                        ListTopics.Request(), node)
        assert list(response.topics) == []
    finally:
        assert node.stop() == 0, node.log()
