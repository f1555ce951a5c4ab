"""A client generated from the seed tutorial's proto works unchanged against our server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from recommender.config import REPO_ROOT

TUTORIAL_PROTO = REPO_ROOT / "protos" / "bookstore" / "legacy" / "recommendations.proto"

# The tutorial's client code, as a reader of it would write it.
CLIENT = textwrap.dedent(
    """
    import sys
    import grpc
    from recommendations_pb2 import BookCategory, RecommendationRequest
    from recommendations_pb2_grpc import RecommendationsStub

    channel = grpc.insecure_channel(sys.argv[1])
    client = RecommendationsStub(channel)
    request = RecommendationRequest(
        user_id=1, category=BookCategory.SCIENCE_FICTION, max_results=3
    )
    for book in client.Recommend(request, timeout=5).recommendations:
        print(book.id, book.title)
    """
)


def test_tutorial_client_gets_recommendations(server, tmp_path: Path):
    # Generated and run in a process of its own, as a third party would: its
    # messages have no package and would clash with ours in one process.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{TUTORIAL_PROTO.parent}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            TUTORIAL_PROTO.name,
        ],
        check=True,
    )
    (tmp_path / "client.py").write_text(CLIENT)
    result = subprocess.run(
        [sys.executable, "client.py", server.target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # User 1 bought Dune and Neuromancer: only Le Guin is left in the category.
    assert result.stdout.splitlines() == ["7 The Left Hand of Darkness"]
