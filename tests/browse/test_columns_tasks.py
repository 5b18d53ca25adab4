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


def test_causal_lm_columns_follow_the_format_the_spec_reads():
    assert [(role.field, role.format, role.optional) for role in columns.roles("causal-lm")] == [
        ("text_column", "text", False), ("prompt_column", "prompt-response", False),
        ("response_column", "prompt-response", False), ("system_column", "prompt-response", True),
        ("messages_column", "chat", False)]
    chat = {"id": "int64", "text": "string", "messages": "list of struct"}
    assert columns.guess("causal-lm", chat) == {"messages_column": "messages"}, "chat is told first, as preflight"
    pairs = {"instruction": "string", "output": "string"}
    assert columns.guess("causal-lm", pairs) == {"prompt_column": "instruction", "response_column": "output"}
    assert columns.check("causal-lm", pairs, {"prompt_column": "instruction"}, data_format="prompt-response") == []
    assert columns.check("causal-lm", pairs, {"prompt_column": "instruction"}) == [
        'data.response_column: required with prompt_column (or set data.format = "prompt-response")']
    assert columns.check("causal-lm", chat, {}, "c.jsonl", data_format="text") == []
    assert columns.check("causal-lm", chat, {"text_column": "messages"}) == [
        "data.text_column: column 'messages' holds list of struct, not a text (allowed: string)"]
    assert columns.check("causal-lm", chat, {"text_column": "body"}, "c.jsonl") == [
        "data.text_column: no column 'body' in c.jsonl (columns: id, text, messages)"]
    assert columns.check("causal-lm", chat, {"text_column": "text", "messages_column": "messages"}) == [
        "data.format: columns of text and chat are both named (messages_column, text_column) (allowed: the columns "
        "of one format, or set data.format)"]
    assert columns.check("causal-lm", {"title": "string"}, {}, "n.jsonl") == [
        "data.format: cannot tell text, prompt-response or chat data from the columns in n.jsonl (columns: title) "
        "(set data.format and its *_column fields)"]
    assert columns.check("causal-lm", None, {}) == [], "a dataset whose columns are unknown is read at launch"
