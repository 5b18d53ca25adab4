"""Browse picks a dataset's columns for any task from what the task's spec declares: no list of its own."""

from loratui.browse import columns


def test_roles_come_from_each_task_spec():
    assert [role.field for role in columns.roles("text-to-image")] == ["image_column", "caption_column"]
    assert [role.field for role in columns.roles("sequence-classification")] == ["text_column", "label_column"]
    assert [role.field for role in columns.roles("semantic-segmentation")] == ["image_column", "mask_column"]
    assert columns.roles("no-such-task") == ()


def test_columns_are_guessed_and_checked_per_task():
    reviews = {"id": "int64", "review": "string", "sentiment": "class label (2)"}
    assert columns.guess("sequence-classification", reviews) == {"text_column": "review",
                                                                  "label_column": "sentiment"}
    scenes = {"pixel_values": "image", "annotation": "image", "scene": "string"}
    assert columns.guess("semantic-segmentation", scenes) == {"image_column": "pixel_values",
                                                              "mask_column": "annotation"}
    assert columns.check("sequence-classification", reviews, {"text_column": "review", "label_column": "id"}) == []
    assert columns.check("sequence-classification", reviews, {"text_column": "id", "label_column": "sentiment"}) == [
        "data.text_column: column 'id' holds int64, not a text (allowed: string)"]
