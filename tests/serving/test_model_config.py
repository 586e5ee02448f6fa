"""facegan.serving.model_config: version policies and TF Serving's model_config_list file."""

import pytest

from facegan.errors import UsageError
from facegan.serving.model_config import ModelSource, sources_from_config_file


def test_version_policies():
    on_disk = [1, 2, 3, 5]
    assert ModelSource("m", None).aspired(on_disk) == {5}
    assert ModelSource("m", None, num_versions=2).aspired(on_disk) == {3, 5}
    assert ModelSource("m", None, policy="all").aspired(on_disk) == {1, 2, 3, 5}
    assert ModelSource("m", None, policy="specific", versions=(2, 4)).aspired(on_disk) == {2}


def test_model_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("""model_config_list {
      config { name: "facegan" base_path: "/models/facegan" model_platform: "tensorflow"
               model_version_policy { specific { versions: 1 versions: 2 } }
               version_labels { key: "stable" value: 1 } }
      config { name: "other" base_path: "/models/other" }
    }""")
    a, b = sources_from_config_file(path)
    assert (a.name, str(a.base_path), a.policy, a.versions, a.labels) == (
        "facegan",
        "/models/facegan",
        "specific",
        (1, 2),
        {"stable": 1},
    )
    assert (b.policy, b.num_versions) == ("latest", 1)
    path.write_text("model_config_list { config { nam: 1 } }")
    with pytest.raises(UsageError, match="models.config"):
        sources_from_config_file(path)
