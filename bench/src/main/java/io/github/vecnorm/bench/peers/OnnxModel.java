package io.github.vecnorm.bench.peers;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * One-node ONNX models, encoded directly as protobuf bytes (ModelProto, from onnx.proto3): small
 * enough that a builder library would weigh more than the model. Only the fields a one-node graph
 * with float tensors of fixed shape needs are written.
 */
final class OnnxModel {

    /** ONNX IR version 8 (ONNX 1.10+): enough for opset 15, read by every current ONNX Runtime. */
    static final long IR_VERSION = 8;
    /** TensorProto.DataType.FLOAT. */
    private static final int FLOAT = 1;
    /** AttributeProto.AttributeType. */
    private static final int ATTR_FLOAT = 1, ATTR_INT = 2;

    private OnnxModel() {
    }

    /** A named float tensor of fixed shape, a graph input or output. */
    record Value(String name, long[] dims) {
    }

    /**
     * A model holding one node {@code opType} of the default domain at {@code opset}.
     *
     * @param attributes Float values become FLOAT attributes, Integer or Long values INT attributes
     */
    static byte[] singleNode(String opType, int opset, List<Value> inputs, List<Value> outputs,
                             Map<String, ? extends Number> attributes) {
        Proto node = new Proto();
        for (Value v : inputs) node.string(1, v.name());
        for (Value v : outputs) node.string(2, v.name());
        node.string(3, opType.toLowerCase() + "0");
        node.string(4, opType);
        attributes.forEach((name, value) -> node.message(5, attribute(name, value)));

        Proto graph = new Proto();
        graph.message(1, node);
        graph.string(2, "vecnorm_" + opType);
        for (Value v : inputs) graph.message(11, valueInfo(v));
        for (Value v : outputs) graph.message(12, valueInfo(v));

        Proto opsetId = new Proto();
        opsetId.string(1, "");
        opsetId.varint(2, opset);

        Proto model = new Proto();
        model.varint(1, IR_VERSION);
        model.string(2, "vecnorm-bench");
        model.message(7, graph);
        model.message(8, opsetId);
        return model.bytes();
    }

    private static Proto attribute(String name, Number value) {
        Proto a = new Proto();
        a.string(1, name);
        switch (value) {
            case Float f -> {
                a.fixed32(2, Float.floatToRawIntBits(f));
                a.varint(20, ATTR_FLOAT);
            }
            case Integer i -> {
                a.varint(3, i);
                a.varint(20, ATTR_INT);
            }
            case Long l -> {
                a.varint(3, l);
                a.varint(20, ATTR_INT);
            }
            default -> throw new IllegalArgumentException("attribute " + name + ": expected Float, Integer or Long, got "
                    + value.getClass().getSimpleName());
        }
        return a;
    }

    /** ValueInfoProto { name, type: TypeProto { tensor_type: { elem_type FLOAT, shape } } }. */
    private static Proto valueInfo(Value v) {
        Proto shape = new Proto();
        for (long d : v.dims()) {
            Proto dim = new Proto();
            dim.varint(1, d);
            shape.message(1, dim);
        }
        Proto tensorType = new Proto();
        tensorType.varint(1, FLOAT);
        tensorType.message(2, shape);
        Proto type = new Proto();
        type.message(1, tensorType);
        Proto info = new Proto();
        info.string(1, v.name());
        info.message(2, type);
        return info;
    }

    /** A protobuf message being written: fields in the order they are added. */
    static final class Proto {
        private static final int VARINT = 0, LENGTH_DELIMITED = 2, FIXED32 = 5;
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        void varint(int field, long value) {
            tag(field, VARINT);
            rawVarint(value);
        }

        void fixed32(int field, int bits) {
            tag(field, FIXED32);
            for (int i = 0; i < 4; i++) out.write(bits >>> (8 * i)); // little-endian
        }

        void string(int field, String s) {
            lengthDelimited(field, s.getBytes(StandardCharsets.UTF_8));
        }

        void message(int field, Proto m) {
            lengthDelimited(field, m.bytes());
        }

        byte[] bytes() {
            return out.toByteArray();
        }

        private void lengthDelimited(int field, byte[] b) {
            tag(field, LENGTH_DELIMITED);
            rawVarint(b.length);
            out.writeBytes(b);
        }

        private void tag(int field, int wireType) {
            rawVarint(((long) field << 3) | wireType);
        }

        /** Base-128, low group first; negative values take ten bytes, as protobuf's int64 does. */
        private void rawVarint(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }
    }
}
