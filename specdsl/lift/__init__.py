"""Import: an existing model (a traced nn.Module, an ONNX graph) lifted back into a spec.

The pipeline runs the other way round from lowering:

    torch module --(backends/torch capture + import table)--┐
                                                             ├─> LiftedGraph --(structure)--> spec data --> fmt text
    ONNX file   --(backends/onnx import table)--------------┘

``LiftedGraph`` (``specdsl.lift.graph``) is the one interface between the captures, which know
torch or ONNX, and the structure recovery, which knows only specdsl ops and module paths.
"""
