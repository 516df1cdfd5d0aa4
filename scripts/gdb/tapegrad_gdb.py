"""gdb pretty-printers and commands for tapegrad.

Loaded automatically for tapegrad binaries (a .debug_gdb_scripts entry points here; gdb asks that this folder
be trusted: `add-auto-load-safe-path /path/to/tapegrad` in ~/.gdbinit), or by hand:

    (gdb) source /path/to/tapegrad/scripts/gdb/tapegrad_gdb.py

    (gdb) print x          Tensor "2.MaxPool2D" [64, 6, 14, 14] requires_grad {0.12, -0.5, ...}
    (gdb) print x.node_._M_ptr->value    Array [64, 6, 14, 14] {0.12, -0.5, ...}
    (gdb) print *this      (in a layer) tg::Conv2D (lenet.tg:5 conv2d 16 5) training = {weight = ..., ...}:
                           any tg::Module, its model-file line when it was built from one, and its fields
    (gdb) tape             the tape of the current thread: index, layer (and its model-file line, e.g.
                           [3.Conv2D lenet.tg:5 conv2d 16 5]), op, input shapes and names (read from the
                           input nodes as it prints), output shape
    (gdb) layer            the layer running now on this thread, named as the tape names it, with its
                           model-file line: "layer 3.body.0.Conv2D (res.tg:6 conv2d 4 3 stride=2 ...)"
                           inside a residual block, "layer 3.Residual (res.tg:5 residual)" in the block
    (gdb) npy dout /tmp/dout.npy   writes a Tensor's value or an Array as a .npy file for numpy, read from
                           the program's memory (nothing runs in the program)
    (gdb) set print elements 20 / tg-values N   how many values the printers show (default 6)
    (gdb) bt               without the C++ standard library's frames (std::function, std::__invoke_impl,
                           ... between a backward and the tape): a frame filter hides them, except the
                           innermost; `bt -no-filters` shows every frame. `step` does not enter std:: or
                           __gnu_cxx:: functions either (`info skip`, `skip delete` to undo); to stop in an
                           op's backward, which the tape calls through std::function, break on its named
                           function (`break tg::relu_backward`).
"""
import re

import gdb
import gdb.printing
from gdb.FrameDecorator import FrameDecorator

MAX_VALUES = [6]


def _svector(v):
    """Elements of an xt::svector (shapes, strides)."""
    begin, end = v["m_begin"], v["m_end"]
    return [int((begin + i).dereference()) for i in range(int(end - begin))]


def _uvector(v, count):
    begin = v["p_begin"]
    return [float((begin + i).dereference()) for i in range(count)]


def _array_summary(array):
    """(shape list, first values) of an xt::xarray_container<float>."""
    shape = _svector(array["m_shape"])
    storage = array["m_storage"]
    size = int(storage["p_end"] - storage["p_begin"])
    shown = min(size, MAX_VALUES[0])
    values = _uvector(storage, shown)
    text = ", ".join("%.4g" % v for v in values)
    if size > shown:
        text += ", ..."
    return shape, size, "{" + text + "}"


def _shape_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


class ArrayPrinter:
    """xt::xarray<float> (tg::Array): its shape and first values."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            shape, _, values = _array_summary(self.val)
            return "Array %s %s" % (_shape_text(shape), values)
        except gdb.error as e:
            return "Array <unreadable: %s>" % e


def _std_string(v):
    """A std::string's characters, without relying on libstdc++'s printers."""
    return v["_M_dataplus"]["_M_p"].string(length=int(v["_M_string_length"]))


class TensorPrinter:
    """tg::Tensor: name, shape, grad flag, first values (and whether it has a gradient)."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        node = self.val["node_"]["_M_ptr"]
        if int(node) == 0:
            return "Tensor <undefined>"
        node = node.dereference()
        try:
            name = _std_string(node["name"])
        except gdb.error:
            name = "?"
        shape, _, values = _array_summary(node["value"])
        unstored = bool(node["unstored"])
        if unstored:  # a fused training pass's output (docs/fusion.md): computed when read
            shape = _svector(node["unstored_shape"])
            values = "(not stored: fused with the activation after it; npy computes it)"
        flags = []
        if bool(node["requires_grad"]):
            flags.append("requires_grad")
        if not bool(node["is_leaf"]):
            flags.append("released" if bool(node["released"]) else "on tape")
        grad_shape = _svector(node["grad"]["m_shape"])
        if grad_shape == shape and shape and not unstored:
            flags.append("has grad")
        label = ('"%s" ' % name) if name else ""
        return "Tensor %s%s %s%s" % (label, _shape_text(shape), " ".join(flags) + " " if flags else "", values)


MODULE_TAG = "tg::Module"


def _module_base(type_):
    """Whether type_ (stripped of typedefs) is tg::Module or derives from it."""
    if type_.code != gdb.TYPE_CODE_STRUCT:
        return False
    if type_.tag == MODULE_TAG:
        return True
    return any(f.is_base_class and _module_base(f.type.strip_typedefs()) for f in type_.fields())


class ModulePrinter:
    """tg::Module and every layer: its type, model-file line ("lenet.tg:5 conv2d 16 5") when it was built
    from a model file, train/eval mode, how many submodules (a Sequential's layers); then the layer's own
    fields (weight, bias, options, ...)."""

    def __init__(self, val):
        try:  # a tg::Module& (e.g. *model.children_[i].second) shows the layer it is
            dynamic = val.dynamic_type.strip_typedefs()
            if dynamic.code == gdb.TYPE_CODE_STRUCT and dynamic.tag != val.type.strip_typedefs().tag:
                val = val.cast(dynamic)
        except gdb.error:
            pass
        self.val = val

    def _module(self):
        """The tg::Module subobject."""
        val = self.val
        while val.type.strip_typedefs().tag != MODULE_TAG:
            base = next(f for f in val.type.strip_typedefs().fields()
                        if f.is_base_class and _module_base(f.type.strip_typedefs()))
            val = val[base]
        return val

    def to_string(self):
        name = str(self.val.type.strip_typedefs().tag or self.val.type)
        try:
            module = self._module()
            location = _std_string(module["source_location_"])
            line = _std_string(module["source_line_"])
            mode = "training" if bool(module["training_"]) else "eval"
            impl = module["children_"]["_M_impl"]
            submodules = int(impl["_M_finish"] - impl["_M_start"])
        except (gdb.error, StopIteration) as e:
            return "%s <unreadable: %s>" % (name, e)
        source = " ".join(part for part in (location, line) if part)
        text = "%s %s%s" % (name, "(%s) " % source if source else "", mode)
        return text + (", %d submodules" % submodules if submodules else "")

    def children(self):
        """The fields of the layer itself and of its bases other than tg::Module (summed up in to_string);
        tg::Module's own when the value is a plain tg::Module."""

        def fields(val):
            type_ = val.type.strip_typedefs()
            for f in type_.fields():
                if f.is_base_class:
                    if f.type.strip_typedefs().tag != MODULE_TAG:
                        yield from fields(val[f])
                elif not f.artificial and not f.name.startswith("_vptr"):
                    yield f.name, val[f]
        return fields(self.val)


class ModuleLookup(gdb.printing.PrettyPrinter):
    """Finds ModulePrinter for any class deriving from tg::Module (cached per type)."""

    def __init__(self):
        super().__init__("tapegrad-modules")
        self.cache = {}

    def __call__(self, val):
        type_ = val.type.strip_typedefs()
        if type_.code != gdb.TYPE_CODE_STRUCT or type_.tag is None:
            return None
        key = type_.tag
        if key not in self.cache:
            try:
                self.cache[key] = _module_base(type_)
            except gdb.error:
                self.cache[key] = False
        return ModulePrinter(val) if self.cache[key] else None


def build_printer():
    pp = gdb.printing.RegexpCollectionPrettyPrinter("tapegrad")
    pp.add_printer("tg::Tensor", "^tg::Tensor$", TensorPrinter)
    pp.add_printer("xt::xarray<float>", "^xt::xarray_container<xt::uvector<float.*>$", ArrayPrinter)
    return pp


class TapeCommand(gdb.Command):
    """Print this thread's tape: index, [layer], op(input shapes and names) -> output shape.

    Runs tg::print_tape() in the program, which reads each entry's input nodes (TapeEntry::inputs, or
    TapeEntry::ran_inputs once the entry's backward has run) as it prints: the names are the current ones.
    """

    def __init__(self):
        super().__init__("tape", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        gdb.execute("call (void)tg::print_tape()", to_string=False)


class LayerCommand(gdb.Command):
    """Print the layer running now on this thread: its path and type ("3.body.0.Conv2D": layer 0 of the body
    of the residual block at index 3) and its model-file line ("res.tg:6 conv2d 4 3 stride=2 padding=1").

    Calls tg::current_layer() and tg::current_layer_source() in the program (Module::call_child sets them
    around each layer's forward): `bt` spreads the path over the call_child frames' `name` arguments ("3",
    "body", "0") and has no model-file line.
    """

    def __init__(self):
        super().__init__("layer", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        try:
            name = _std_string(gdb.parse_and_eval("tg::current_layer()").referenced_value())
            source = _std_string(gdb.parse_and_eval("tg::current_layer_source()").referenced_value())
        except gdb.error as e:
            raise gdb.GdbError("layer: cannot call tg::current_layer() (is the program running?): %s" % e)
        if not name:
            print("layer: none (not inside a layer's forward)")
        else:
            print("layer %s%s" % (name, " (%s)" % source if source else ""))


def _array_of(val):
    """The xt::xarray<float> of a tg::Tensor (its node's value) or of a tg::Array, references followed."""
    if val.type.strip_typedefs().code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
        val = val.referenced_value()
    tag = val.type.strip_typedefs().tag or ""
    if tag == "tg::Tensor":
        node = val["node_"]["_M_ptr"]
        if int(node) == 0:
            raise gdb.GdbError("the Tensor is undefined")
        if bool(node.dereference()["unstored"]):  # a fused pass's output: computed now, in the program
            gdb.parse_and_eval("tg::materialize((tg::Node*)%d)" % int(node))
        return node.dereference()["value"]
    if tag.startswith("xt::xarray_container<xt::uvector<float"):
        return val
    raise gdb.GdbError("npy: %s is neither a tg::Tensor nor a tg::Array" % (tag or val.type))


class NpyCommand(gdb.Command):
    """npy EXPR FILE: write a tg::Tensor's value or a tg::Array as a numpy .npy file (float32, row-major).

    Reads the program's memory from gdb: nothing runs in the program, so it works in any frame, in a core
    file, and for a temporary; except for the output of a fused training pass (docs/fusion.md), which is
    not stored: that is computed first by calling tg::materialize in the program, which runs a conv (do not
    do that while stopped inside a conv kernel: it would reuse that thread's scratch buffers). numpy.load(FILE)
    reads it back.
    """

    def __init__(self):
        super().__init__("npy", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 2:
            raise gdb.GdbError("usage: npy EXPR FILE (e.g. npy dout /tmp/dout.npy)")
        array = _array_of(gdb.parse_and_eval(argv[0]))
        shape = _svector(array["m_shape"])
        storage = array["m_storage"]
        size = int(storage["p_end"] - storage["p_begin"])
        data = gdb.selected_inferior().read_memory(int(storage["p_begin"]), 4 * size) if size else b""
        dims = "".join("%d, " % d for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape)
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % dims
        header += " " * (63 - (10 + len(header)) % 64) + "\n"  # magic, version, length: 10 bytes
        with open(argv[1], "wb") as out:
            out.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))
            out.write(bytes(data))
        print("wrote %s: float32 %s" % (argv[1], _shape_text(shape)))


class ValuesCommand(gdb.Command):
    """tg-values N: how many values the tapegrad printers show."""

    def __init__(self):
        super().__init__("tg-values", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        MAX_VALUES[0] = max(1, int(arg))


STD_FUNCTION = re.compile(r"^(std|__gnu_cxx)::")
STD_FILE = re.compile(r"/include/c\+\+/")


class HideStdFrames:
    """A frame filter: backtraces without the standard library's frames (functions in std:: or __gnu_cxx::,
    or defined in the C++ headers), so that `bt` from tg::relu_backward reads backward -> tape -> backward()
    -> the caller. The innermost frame always stays (a stop inside the standard library shows where).
    `bt -no-filters` shows everything; `disable frame-filter global tapegrad-hide-std` turns it off."""

    def __init__(self):
        self.name = "tapegrad-hide-std"
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    @staticmethod
    def _is_std(decorator):
        try:
            if decorator.inferior_frame().level() == 0:
                return False
            function = decorator.function()
            if isinstance(function, str) and STD_FUNCTION.match(function):
                return True
            filename = decorator.filename()
            return isinstance(filename, str) and STD_FILE.search(filename) is not None
        except (gdb.error, RuntimeError, AttributeError):
            return False

    def filter(self, frames):
        return (ShortName(frame) for frame in frames if not self._is_std(frame))


def short_name(name):
    """A function name without its parameter list, template arguments as <...>: "tg::make_op(std::string,
    xt::xarray_container<...>, ...)" -> "tg::make_op", "tg::fail<char [31], ...>" -> "tg::fail<...>"."""
    if "operator" in name.replace("operator()", ""):
        return name  # operator<, operator<<, ...: leave as gdb has it
    out, depth, i = [], 0, 0
    while i < len(name):
        for keep in ("(anonymous namespace)", "operator()"):
            if depth == 0 and name.startswith(keep, i):
                out.append(keep)
                i += len(keep)
                break
        else:
            c = name[i]
            if c == "<":
                if depth == 0:
                    out.append("<...>")
                depth += 1
            elif c == ">" and depth > 0:
                depth -= 1
            elif c == "(" and depth == 0:
                break
            elif depth == 0:
                out.append(c)
            i += 1
    return "".join(out) or name


class ShortName(FrameDecorator):
    """A frame named as plain `bt` names a simple function ("tg::relu_backward"), without the parameter types
    and template arguments gdb spells out for some (tg::make_op, tg::fail<...>)."""

    def function(self):
        try:
            name = self.inferior_frame().name()
        except gdb.error:
            name = None
        return short_name(name) if name else super().function()


def skip_std_when_stepping():
    """`step` steps over the standard library (shared_ptr copies of Tensors, std::function calls)."""
    for command in ("skip -rfunction ^(std|__gnu_cxx)::", "skip -gfile /usr/include/c++/*/*",
                    "skip -gfile /usr/include/c++/*/*/*"):
        try:
            gdb.execute(command, to_string=True)
        except gdb.error:
            pass


if not getattr(gdb, "_tapegrad_printers_loaded", False):
    gdb.printing.register_pretty_printer(None, build_printer(), replace=True)
    gdb.printing.register_pretty_printer(None, ModuleLookup(), replace=True)
    TapeCommand()
    LayerCommand()
    NpyCommand()
    ValuesCommand()
    HideStdFrames()
    skip_std_when_stepping()
    gdb._tapegrad_printers_loaded = True
