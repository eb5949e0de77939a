import io


def test_upload_then_download(client):
    response = client.post("/", data={"file": (io.BytesIO(b"hello"), "hello.txt")})
    assert response.status_code == 201, response.data
    link = response.get_data(as_text=True).strip()
    slug = link.rsplit("/", 1)[1]
    download = client.get(f"/{slug}")
    assert download.status_code == 200
    assert download.data == b"hello"


def test_memory_backends(memory_app, memory):
    client = memory_app.test_client()
    response = client.put("/a.txt", data=b"abc")
    assert response.status_code == 201, response.data
    assert len(memory.storage.blobs) == 1 and len(memory.metadata.drops) == 1
