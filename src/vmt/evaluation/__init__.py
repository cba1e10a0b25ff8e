"""Detection metrics (COCO semantics, identical to pycocotools) and the HTML report."""
