"""Classes without an account server: a teacher's classes, their students, and lesson locks.

A teacher (the operator's teacher key, `teacher`) makes a class and gets a short code; a student joins with
the code, a name and a PIN they choose (`pins`: checked, scrypt-hashed); the browser that joined is bound to
the student in the class store (`store`, its own SQLite file in the data folder), so the student's runs are
filed under one owner id in every browser they join from. A lesson lock (`lesson`) narrows what a class's
students see for a while. `report` writes a class's results as CSV. Nothing here imports Streamlit or the
job server: the pages (`lab_ui.identity`, the Teacher page) put these together with the run store.
"""
