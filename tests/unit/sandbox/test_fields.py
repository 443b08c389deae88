import pytest

from filmroll.sandbox.fields import FieldSyntaxError, parse_fields


def test_flat_list():
    assert [f.name for f in parse_fields("id,caption, media_url")] == ["id", "caption", "media_url"]


def test_nested_expansion_with_modifiers():
    (media,) = parse_fields("media.limit(50).after(QVFI){id,children{id,media_url}}")
    assert media.modifiers == {"limit": "50", "after": "QVFI"}
    assert [f.name for f in media.subfields] == ["id", "children"]
    assert [f.name for f in media.subfields[1].subfields] == ["id", "media_url"]


def test_repeated_fields_collapse():
    assert [f.name for f in parse_fields("id,id,caption")] == ["id", "caption"]


@pytest.mark.parametrize("text", ["", ",", "id,", "{id}", "a{", "a{b", "a.limit(1", "a.(1)", "a b", "a}", "1a",
                                  "a{b{c{d{e{f}}}}}"])
def test_syntax_errors_name_the_position(text):
    with pytest.raises(FieldSyntaxError, match="at character"):
        parse_fields(text)
