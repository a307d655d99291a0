package backend

import "testing"

func TestAnswersClassesAndBytes(t *testing.T) {
	var a Answers
	for _, code := range []int{101, 200, 204, 299, 301, 304, 404, 429, 499, 500, 503, 599, 0, 600} {
		a.Add(code, 0)
	}
	a.AddBytes(10, 200)
	a.AddBytes(5, 0)
	a.AddBytes(-1, 1) // unknown lengths count as none
	want := Classes{Informational: 1, Success: 3, Redirection: 2, ClientError: 3, ServerError: 3, Other: 2}
	if got := a.Classes(); got != want {
		t.Errorf("Classes() = %+v, want %+v", got, want)
	}
	if in, out := a.Bytes(); in != 15 || out != 201 {
		t.Errorf("Bytes() = %d, %d; want 15, 201", in, out)
	}
	var sum Classes
	sum.Add(want)
	sum.Add(want)
	if sum.Success != 6 || sum.Other != 4 {
		t.Errorf("Classes.Add twice = %+v, want each count doubled", sum)
	}
}
